"""The kernel's periodic jobs, each a timer (docs/kernel.md). On the market clock: candle closes,
portfolio snapshots and the wake-ups of positions' time-outs. On the ops clock: model polling
and health. On each pair's own clock: its positions' time-outs.

A part of the kernel (`Kernel` takes it in); what it needs of the rest is the `Scheduled`
protocol, checked against `Kernel` wherever these methods are called on one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from helios_core.market import PairEvent, Tick
from helios_live.alerts.service import Alerts
from helios_live.clock import Clock, TimeEvent
from helios_live.data.client import DataClient
from helios_live.kernel import alerting, health
from helios_live.kernel.health import Watched
from helios_live.kernel.model_watch import ModelWatch
from helios_live.kernel.pair import Arrival, PairState
from helios_live.kernel.supervisor import Supervisor
from helios_live.kernel.tiers import TierSwitches
from helios_live.ledger.writer import LedgerWriter
from helios_live.models.inference import Predictor
from helios_live.settings import HeliosSettings
from helios_live.trading.allocation import Allocation
from helios_live.trading.desk import Desk

# Every minute whatever the base timeframe: a 5m candle ends on a minute, so it closes on the
# tick at its end plus the grace, as a 1m one does; time-outs keep a minute's resolution.
CLOSE_EVERY_S = 60
DAY_S = 86_400


class Scheduled(Protocol):
    alerts: Alerts | None
    allocation: Allocation
    approval: Any
    clock: Clock
    ops_clock: Clock
    client: DataClient
    desk: Desk
    health_timer: bool
    ledger_writer: LedgerWriter
    models: ModelWatch
    queues: dict[str, asyncio.Queue[Arrival]]
    settings: HeliosSettings
    status: str
    supervisor: Supervisor
    tiers: TierSwitches
    _arriving: float | None
    _timers_set: bool
    _failing: list[str] | None
    _spool_seen: tuple[bool, bool]

    @property
    def predictor(self) -> Predictor | None: ...

    async def _put(self, queue: asyncio.Queue[Arrival], event: PairEvent, received: float | None) -> None: ...

    async def prices(self, pair: str, price: float, now: float) -> None: ...

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None: ...

    async def _reload_model(self) -> None: ...

    async def _tick_all(self, event: TimeEvent) -> None: ...

    async def _tick(self, pair: str, event: TimeEvent) -> None: ...

    async def _snapshot(self, event: TimeEvent) -> None: ...

    async def _poll_model(self, event: TimeEvent) -> None: ...

    async def _check_health(self, event: TimeEvent) -> None: ...

    async def _allocation_check(self, event: TimeEvent) -> None: ...

    async def _refresh_targets(self, event: TimeEvent) -> None: ...

    async def _retry_ledger(self, event: TimeEvent) -> None: ...

    async def _check_alerts(self, event: TimeEvent) -> None: ...

    async def _watch_spool(self) -> None: ...

    async def _timed_out(self, state: PairState, event: TimeEvent) -> None: ...

    def _wake(self, pair: str, at: float, name: str) -> None: ...

    def _received(self, event: TimeEvent) -> float | None: ...

    def health_checks(self) -> dict[str, str]: ...

    def market_now(self) -> float: ...


def every(kernel: Scheduled, clock: Clock, name: str, interval: float, callback: Any, offset: float = 0.0) -> None:
    # On the interval's own grid (whole minutes for a minute), wherever the clock started.
    start = (math.floor(clock.timestamp() / interval) + 1) * interval + offset
    clock.set_timer(name, interval, kernel.supervisor.timer(name, callback), start_s=start)


class Timers:
    _failing: list[str] | None  # the checks the last health check found failing; None before the first
    _spool_seen: tuple[bool, bool] = (False, False)  # whether the spool held entries, and was full

    async def _watch_spool(self: Scheduled) -> None:
        """Engine events when the ledger's writes start going to the spool, when it fills (entries
        stop) and when it has landed."""
        spool = self.ledger_writer.spool
        if spool is None:
            return
        seen = (spool.entries > 0, spool.full)
        if seen == self._spool_seen:
            return
        writer = self.ledger_writer
        if seen[0] and not self._spool_seen[0]:
            await self.record("LEDGER_SPOOLING", error=writer.health.error, path=str(spool.path))
        if seen[1] and not self._spool_seen[1]:
            await self.record("LEDGER_SPOOL_FULL", decisions=spool.decisions, reason=writer.refusing())
        if not seen[0] and self._spool_seen[0]:
            await self.record("LEDGER_SPOOL_LANDED", landed=writer.drained, dropped=writer.dropped)
        self._spool_seen = seen

    def _set_ops_timers(self: Scheduled) -> None:
        """The operator's jobs, on the ops clock (at start, or with the market timers when the
        ops clock is a market clock that has no time yet)."""
        if not self.ops_clock.is_set:
            return
        if self.models.pinned is None:
            every(self, self.ops_clock, "model-poll", self.settings.live.model_poll_s, self._poll_model)
        if self.health_timer:
            every(self, self.ops_clock, "health", self.settings.live.health_s, self._check_health)
        if self.ledger_writer.spool is not None:
            every(self, self.ops_clock, "ledger-retry", self.settings.ledger.retry_s, self._retry_ledger)
        if self.allocation.reads_ledger:
            every(self, self.ops_clock, "allocation-refresh", self.settings.allocation.refresh_s, self._refresh_targets)
        if self.alerts is not None:
            every(self, self.ops_clock, "alerts", self.alerts.check_s, self._check_alerts)

    def _set_timers(self: Scheduled) -> None:
        """Every job on the market clock; set once the clock has a time."""
        if self._timers_set:
            return
        self._timers_set = True
        every(self, self.clock, "candle-close", CLOSE_EVERY_S, self._tick_all, offset=self.settings.live.close_grace_s)
        every(self, self.clock, "snapshot", self.settings.portfolio.snapshot_s, self._snapshot)
        if self.settings.allocation.enabled:
            hour = self.settings.allocation.check_hour * 3600
            start = (math.floor((self.clock.timestamp() - hour) / DAY_S) + 1) * DAY_S + hour  # today's, if still ahead
            timer = self.supervisor.timer("allocation-check", self._allocation_check)
            self.clock.set_timer("allocation-check", DAY_S, timer, start_s=start)
        if self.ops_clock is self.clock:
            Timers._set_ops_timers(self)
        for position in self.desk.account.positions.values():
            self._wake(position.pair, position.deadline.timestamp(), f"timeout-{position.key}")

    async def _tick_all(self: Scheduled, event: TimeEvent) -> None:
        for queue in self.queues.values():
            await self._put(queue, Tick(event.ts), self._received(event))

    async def _tick(self: Scheduled, pair: str, event: TimeEvent) -> None:
        queue = self.queues.get(pair)
        if queue is not None:
            await self._put(queue, Tick(event.ts), self._received(event))

    def _received(self: Scheduled, event: TimeEvent) -> float | None:
        """When a tick's cause arrived: the live clock's firing, or the message that moved a
        clock following the data past it (a candle it closes is timed from then)."""
        return event.fired if event.fired is not None else self._arriving

    def _wake(self: Scheduled, pair: str, at: float, name: str) -> None:
        """Wake `pair` at `at` on the kernel's clock: on a live clock nothing else would until
        its next event; on one that follows the data the pair's own alarm may have fired already."""
        self.clock.set_time_alert(name, at, self.supervisor.timer("wake", partial(self._tick, pair)))

    def _watch(self: Scheduled, state: PairState, key: str, deadline: float) -> None:
        """A position's time-out: an alarm on the pair's own clock, and a wake-up on the kernel's."""
        alarm: Callable[[TimeEvent], Any] = partial(self._timed_out, state)
        state.timers.set_time_alert(f"timeout-{key}", deadline, self.supervisor.timer("timeout", alarm))
        if self._timers_set:
            self._wake(state.pair, deadline, f"timeout-{key}")

    async def _timed_out(self: Scheduled, state: PairState, event: TimeEvent) -> None:
        state.now = event.ts
        if state.catchup is None:
            await self.prices(state.pair, math.nan, event.ts)

    async def _snapshot(self: Scheduled, event: TimeEvent) -> None:
        self.ledger_writer.submit(None, None, (), [self.desk.snapshot(event.ts, "PERIODIC")])

    async def _poll_model(self: Scheduled, event: TimeEvent) -> None:
        await self._reload_model()

    def health_checks(self: Watched) -> dict[str, str]:
        """Each of the engine's health checks, with why it fails ("" when it passes)."""
        return health.checks(self)

    async def _allocation_check(self: Scheduled, event: TimeEvent) -> None:
        if not self.tiers.on("tier5"):  # the allocation switched off: no daily trims either
            return
        await self.allocation.check(event.ts)

    async def _refresh_targets(self: Scheduled, event: TimeEvent) -> None:
        await self.allocation.refresh()

    async def _retry_ledger(self: Scheduled, event: TimeEvent) -> None:
        self.ledger_writer.retry()

    async def _check_alerts(self: Scheduled, event: TimeEvent) -> None:
        if self.alerts is not None:
            await self.alerts.check(alerting.readings(self))

    async def _check_health(self: Scheduled, event: TimeEvent) -> None:
        await self._watch_spool()
        failing = {name: reason for name, reason in self.health_checks().items() if reason}
        names = sorted(failing)
        if names != self._failing:
            if self._failing is not None or failing:  # a healthy start is no news
                await self.record("HEALTH", healthy=not failing, failing=failing)
            self._failing = names
