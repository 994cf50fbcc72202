"""The alerting service: rules in, throttled alerts out to every channel whose floor they reach.

The engine hands it every engine event (`on_event`, from `Kernel.record`) and calls `check`
on a timer of its ops clock with a reading of its state. Sending never blocks the caller: each
alert is a task that records an `ALERT` engine event and delivers to the routed channels
concurrently (a failed or slow channel delays no other), then hands the deliveries to the
recorder. `close` waits for sends under way at most `close_grace_s`, so it never holds up an exit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from helios_core.timeframes import as_datetime
from helios_live.alerts import rules
from helios_live.alerts.alert import Alert, AlertSeverity, State
from helios_live.alerts.channels import Channel
from helios_live.alerts.delivery import Policy, Sleep, deliver
from helios_live.alerts.recorder import Recorder
from helios_live.alerts.rules import Change, Conditions, Readings
from helios_live.alerts.throttle import Key, Throttle

log = logging.getLogger("helios.alerts")
ALERT = "ALERT"  # the engine event of every alert sent
Record = Callable[..., Awaitable[None]]
LEVELS = {
    AlertSeverity.INFO: logging.INFO,
    AlertSeverity.WARNING: logging.WARNING,
    AlertSeverity.CRITICAL: logging.ERROR,
}


class Alerts:
    def __init__(
        self,
        channels: Sequence[Channel],
        throttle: Throttle,
        conditions: Conditions,
        policy: Policy = Policy(),  # noqa: B008 -- frozen
        *,
        check_s: float = 10.0,
        close_grace_s: float = 5.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.channels, self.throttle, self.conditions, self.policy = tuple(channels), throttle, conditions, policy
        self.check_s, self.close_grace_s, self.sleep = check_s, close_grace_s, sleep
        self.now: Callable[[], float] = lambda: 0.0
        self.record: Record | None = None
        self.recorder: Recorder | None = None
        self.sent = 0
        self._latest: dict[Key, Change] = {}
        self._ids: dict[Key, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flushing = False

    def bind(self, now: Callable[[], float], record: Record | None, recorder: Recorder | None) -> None:
        """The engine's side: its ops clock, its engine events, the ledger's recorder."""
        self.now, self.record, self.recorder = now, record, recorder

    # rules in -----------------------------------------------------------------------------------
    def on_event(self, kind: str, pair: str | None, detail: Mapping[str, Any]) -> None:
        if kind != ALERT:
            for change in rules.from_event(kind, pair, detail):
                self._apply(change)

    async def check(self, readings: Readings) -> None:
        """The timer's turn: the conditions it reads, alerts whose throttle window ended, and the
        delivery records that wait for the ledger."""
        for change in self.conditions.evaluate(readings, self.now()):
            self._apply(change)
        for key, reminder in self.throttle.due(self.now()):
            self._raise(self._latest[key], "FIRING", reminder)
        if self.recorder is not None and self.recorder.pending and not self._flushing:
            # In the background: a ledger that hangs (the very condition one rule watches) holds
            # up no rule; the recorder's lock keeps one flush at a time.
            self._flushing = True
            task = asyncio.get_running_loop().create_task(self._flush(), name="alert-records")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        assert self.recorder is not None  # noqa: S101 -- only started with one
        try:
            await self.recorder.flush()
        finally:
            self._flushing = False

    def _apply(self, change: Change) -> None:
        key, now = change.key, self.now()
        self._latest[key] = change
        if change.once:
            if self.throttle.notice(key, now):
                self._raise(change, "FIRING")
            return
        state = self.throttle.observe(key, change.firing, now)
        if state is not None:
            self._raise(change, state)

    # alerts out ---------------------------------------------------------------------------------
    def _raise(self, change: Change, state: State, reminder: bool = False) -> None:
        key = change.key
        if state == "FIRING" and not reminder:
            self._ids[key] = uuid.uuid4().hex
        alert = Alert(
            self._ids.get(key) or uuid.uuid4().hex,
            key[0],
            key[1],
            change.severity,
            state,
            change.message,
            as_datetime(self.now()),
            reminder,
        )
        log.log(LEVELS[alert.severity], "%s: %s", alert.title, alert.message)
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self._send(alert), name=f"alert-{alert.rule}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def routed(self, alert: Alert) -> list[Channel]:
        """The channels whose floor the alert's severity reaches (a recovery goes where its alert went)."""
        return [c for c in self.channels if alert.severity >= c.min_severity]

    async def _send(self, alert: Alert) -> None:
        channels = self.routed(alert)
        try:
            noted = None if self.record is None else asyncio.ensure_future(self._note(alert, channels))
            results = await asyncio.gather(*(deliver(c, alert, self.policy, self.now, self.sleep) for c in channels))
            if noted is not None:
                await noted
            if self.recorder is not None and results:
                self.recorder.add(results)
                await self.recorder.flush()
        except Exception:  # no task dies quietly: nobody awaits this one
            log.exception("alert %s: not sent or not recorded", alert.alert_id)

    async def _note(self, alert: Alert, channels: list[Channel]) -> None:
        assert self.record is not None  # noqa: S101 -- only called with one
        detail = {**alert.payload(), "channels": [c.name for c in channels]}
        await self.record(ALERT, None, **detail)

    async def close(self) -> None:
        """Let sends under way finish for at most `close_grace_s`, drop the rest, close the channels."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.close_grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("alerts: %d alert(s) still sending at shutdown were dropped", len(late))
        if self.recorder is not None:
            await self.recorder.flush()
        for channel in self.channels:
            await channel.close()
