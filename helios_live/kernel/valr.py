"""The kernel's VALR venue, wired in by the kernel's builder: the SHADOW and LIVE execution
clients, the account stream, the status poll, reconciliation with its entry block, and what
LIVE's emergency stop does first.

Built only when VALR credentials are configured; without them SHADOW and LIVE are refused.
LIVE is entered only after a read-only check (the account's balances) passes; at every start in
LIVE, orders a previous run journalled and did not see end are followed again, and the account
is reconciled before the first entry. A reconciliation that finds a mismatch records it, raises
an engine event and blocks entries (exits still run) until a later run finds none or an operator
acknowledges it over REST.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from helios_core.errors import HeliosError, TemporaryError
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import OrderPurpose, OrderSide, TradingMode
from helios_core.trading.orders import OrderIntent
from helios_live.clock import Clock, TimeEvent
from helios_live.execution.journal import LedgerJournal
from helios_live.execution.paper import PaperExecutionClient
from helios_live.execution.reconcile import mismatches
from helios_live.execution.shadow import ShadowExecutionClient
from helios_live.execution.valr import Caps, ValrExecutionClient
from helios_live.kernel.supervisor import Supervisor
from helios_live.ledger import Ledger
from helios_live.ledger.writer import LedgerWriter
from helios_live.settings import HeliosSettings
from helios_live.trading.desk import Desk, ModeError
from helios_live.venues.valr.signing import credentials as signer
from helios_live.venues.valr.stream import ValrStream
from helios_live.venues.valr.trading import ValrTradingClient, VenueError

log = logging.getLogger("helios.live")
PROBLEM_EVERY_S = 10.0
CREDENTIALS = "HELIOS_VALR_API_KEY and _SECRET, or HELIOS_VALR_SECRETS_FILE"
Record = Callable[..., Awaitable[None]]
Run = Callable[..., Awaitable[Any]]


class ValrVenue:
    def __init__(
        self,
        settings: HeliosSettings,
        desk: Desk,
        writer: LedgerWriter,
        ledger: Ledger,
        record: Record,
        run: Run,
        errors: Any,
    ) -> None:
        self.settings, self.desk, self.ledger = settings, desk, ledger
        self.record, self.run = record, run
        self.block = ""  # why entries are blocked, "" when they are not
        self.blocking_id: int | None = None  # the reconciliation that blocks them
        self.acknowledged: set[str] = set()  # mismatch keys an operator has acknowledged
        self.stream: ValrStream | None = None
        self.live: ValrExecutionClient | None = None
        self.shadow: ShadowExecutionClient | None = None
        self.last_reconciled: datetime | None = None
        credentials = signer(settings.valr)
        if credentials is None:
            return
        s = settings.valr
        # VALR checks every timestamp against its own clock: requests are stamped with the machine's.
        rest = ValrTradingClient(s.base_url, credentials, timeout_s=s.order_timeout_s)
        caps = Caps(s.max_order_notional, s.max_day_notional)
        self.live = ValrExecutionClient(rest, LedgerJournal(writer, ledger, errors), price=desk.last, caps=caps)
        self.live.opening = desk.opening_record
        self.live.problem = self._problem
        self._problems: dict[str, tuple[float, int]] = {}  # kind -> (when last recorded, suppressed since)
        self._recording: set[asyncio.Future[None]] = set()
        self.shadow = ShadowExecutionClient(self.live, PaperExecutionClient(desk, desk.config.fills))
        desk.connect(TradingMode.LIVE, self.live)
        desk.connect(TradingMode.SHADOW, self.shadow)

    def blocking(self) -> str:
        return self.block

    def _problem(self, kind: str, detail: dict[str, Any]) -> None:
        """What VALR sent that Helios could not use, as an engine event: at most one per kind every
        PROBLEM_EVERY_S, with how many were not recorded since (garbage must not flood the ledger)."""
        now = time.monotonic()
        last, suppressed = self._problems.get(kind, (-math.inf, 0))
        if now - last < PROBLEM_EVERY_S:
            self._problems[kind] = (last, suppressed + 1)
            return
        self._problems[kind] = (now, 0)
        task: asyncio.Future[None] = asyncio.ensure_future(self.record(kind, **detail, suppressed=suppressed))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    def snapshot(self) -> dict[str, Any] | None:
        """For the status: what blocks entries, the account stream, the orders being followed."""
        if self.live is None:
            return {"credentials": False, "entries_blocked": self.block or None}
        stream = self.stream.stats if self.stream is not None else None
        return {
            "credentials": True,
            "entries_blocked": self.block or None,
            "account_stream": {"connected": stream.connected, "connects": stream.connects} if stream else None,
            "orders_open": sorted(self.live.orders),
            "last_reconciled": self.last_reconciled.isoformat() if self.last_reconciled else None,
            "counts": dict(self.live.stats),
            "fees": {pair: {"maker": m, "taker": t} for pair, (m, t) in self.live.fees.items()},
            "rest": {"requests": self.live.rest.stats.requests, "rate_limited": self.live.rest.stats.rate_limited},
        }

    async def enter(self, mode: TradingMode) -> None:
        """Get `mode`'s client ready (ModeError saying why it cannot be)."""
        if mode is TradingMode.PAPER:
            return
        if self.live is None or self.shadow is None:
            raise ModeError(
                f"{mode} needs VALR credentials (HELIOS_VALR_API_KEY and _SECRET, or HELIOS_VALR_SECRETS_FILE)"
            )
        try:
            await (self.shadow.prepare() if mode is TradingMode.SHADOW else self.live.prepare())
        except (TemporaryError, VenueError, HeliosError) as exc:
            raise ModeError(f"{mode} refused: VALR's read-only check failed: {exc}") from None

    async def start(self, mode: TradingMode, supervisor: Supervisor, ops: Clock) -> None:
        """At the kernel's start (or a switch) in `mode`: the account stream, the timers, the
        unfinished orders of earlier runs, and a first reconciliation, in LIVE."""
        if mode is not TradingMode.LIVE or self.live is None:
            return
        live, s = self.live, self.settings.valr
        if self.stream is None:
            rest = live.rest
            self.stream = ValrStream(
                s.account_ws_url, {}, live, headers=partial(stream_headers, rest)
            )  # fmt: skip
        running = supervisor.tasks.get("account-stream")
        if running is None or running.done():  # LIVE again after PAPER: one stream, not two
            supervisor.task("account-stream", self.stream.run)
        ops.set_timer("order-status", s.status_poll_s, supervisor.timer("order-status", self._poll))
        ops.set_timer("reconcile", s.reconcile_s, supervisor.timer("reconcile", self._reconcile_timer))
        await self._restore_block()
        await self.resume()
        try:
            await self.reconcile()
        except (TemporaryError, VenueError, HeliosError) as exc:
            self.block = (
                f"LIVE: the first reconciliation with VALR failed: {exc}; it runs again every {s.reconcile_s:g} s"
            )
            await self.record("RECONCILIATION_FAILED", error=str(exc))

    async def resume(self) -> None:
        assert self.live is not None  # noqa: S101 -- start() checked it
        entries = await self.run(self.ledger.unfinished_orders, str(TradingMode.LIVE))
        for entry in entries:
            i = entry.intent
            intent = OrderIntent(
                i.client_order_id, i.position_key, i.pair, OrderSide(i.side), OrderPurpose(i.purpose), i.quantity,
                TradingMode(i.mode), i.created_at, float((i.opening or {}).get("leverage", 1.0)), i.reason,
            )  # fmt: skip
            self.desk.resume(intent, i.opening)
            await self.live.resume(i.client_order_id, intent, i.quantity, entry.venue_order_id, entry.status)
        if entries:
            await self.record("ORDERS_RESUMED", orders=[e.intent.client_order_id for e in entries])

    async def _poll(self, event: TimeEvent) -> None:
        if self.live is not None and self.desk.mode is TradingMode.LIVE and self.live.orders:
            await self.live.catch_up()

    async def _reconcile_timer(self, event: TimeEvent) -> None:
        if self.desk.mode is TradingMode.LIVE:
            await self.reconcile()

    async def reconcile(self) -> dict[str, Any]:
        """Compare VALR's account with the ledger now; block entries on a new mismatch
        (ModeError outside LIVE, TemporaryError / VenueError when VALR cannot be asked)."""
        if self.live is None or self.desk.mode is not TradingMode.LIVE:
            raise ModeError(
                f"reconciliation compares VALR's account with the ledger: only in LIVE, not {self.desk.mode}"
            )
        rest = self.live.rest
        opened, trades, balances = await rest.open_orders(), await rest.trades(100), await rest.balances()
        self.live.balances = balances
        cids = {str(o.get("customerOrderId") or "") for o in opened} | {
            str(t.get("customerOrderId") or "") for t in trades
        }
        journalled = await self.run(self._journalled, cids)
        tracked = set(self.live.orders)
        found = mismatches(
            opened, trades, balances, journalled | tracked, self.desk.account.positions.values(), self.live.rules
        )
        new = [m for m in found if m["key"] not in self.acknowledged]
        at = as_datetime(self.live.clock())
        self.last_reconciled = at
        rec_id = await self.run(self.ledger.record_reconciliation, at, new)
        if new:
            self.blocking_id = rec_id
            self.block = (
                f"reconciliation {rec_id} found {len(new)} mismatch(es) with VALR ({new[0]['detail']});"
                " entries are blocked until it is resolved or acknowledged"
                f" (POST /api/reconciliations/{rec_id}/acknowledge)"
            )
            await self.record("RECONCILIATION_MISMATCH", reconciliation=rec_id, mismatches=new)
        elif self.block:
            await self.record("RECONCILIATION_RESOLVED", reconciliation=rec_id, blocked_by=self.blocking_id)
            self.block, self.blocking_id = "", None
        return {"id": rec_id, "ok": not new, "mismatches": new}

    def _journalled(self, cids: set[str]) -> set[str]:
        return {cid for cid in cids if cid and self.ledger.journal_entry(cid) is not None}

    async def acknowledge(self, rec_id: int, by: str, note: str, now: float) -> bool:
        """An operator settles a reconciliation's mismatches: they are not raised again, and the
        entries it blocked may open again."""
        done = await self.run(self.ledger.acknowledge_reconciliation, rec_id, by, as_datetime(now), note)
        if not done:
            return False
        await self._restore_block()
        await self.record("RECONCILIATION_ACKNOWLEDGED", reconciliation=rec_id, by=by, note=note)
        return True

    async def _restore_block(self) -> None:
        """The block the ledger's latest reconciliation leaves, and what has been acknowledged."""
        page = await self.run(self.ledger.reconciliations)
        for item in page.items:
            if item.get("acknowledged_at") is not None:
                self.acknowledged |= {m["key"] for m in item.get("mismatches") or [] if "key" in m}
        latest = await self.run(self.ledger.open_reconciliation)
        if latest is None:
            self.block, self.blocking_id = "", None
        else:
            self.blocking_id = int(latest["id"])
            self.block = f"reconciliation {latest['id']} is unresolved: acknowledge it or reconcile again"

    async def cancel_all(self) -> int:
        """LIVE's emergency stop, first step: cancel every open order on the account."""
        if self.live is None:
            return 0
        return len(await self.live.cancel_all())

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        if self.live is not None:
            await self.live.close()
            await self.live.rest.aclose()


def valr_venue(kernel: Any) -> ValrVenue:
    """The kernel's builder hands this to the kernel, which calls it once its desk exists."""
    return ValrVenue(
        kernel.settings, kernel.desk, kernel.ledger_writer, kernel.ledger, kernel.record, kernel._run, kernel.errors
    )


def stream_headers(rest: ValrTradingClient) -> dict[str, str]:
    return rest.credentials.headers(int(rest.clock() * 1000), "GET", "/ws/account")
