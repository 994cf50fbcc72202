"""Tier 5 allocation in the engine: the targets in force, the entry cap, and rebalancing.

The targets are computed on the batch side (the `allocation_targets` Dagster asset, or the
backtester's allocator on its own clock) and read here: this process has no optimiser. A pair's
target caps new entries (scaled down, never up); the daily check trims pairs above target plus
the drift threshold back to target (Monday's pass with the tighter weekly one); a risk event
trims the pairs it names. Every rebalance is a `rebalancing_events` row; trims and closes go
through the desk and its execution client like any other order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from helios_core.allocation.rebalance import Reason, Trim, drift_limits, emergency_limits, entry_cap, trims
from helios_core.allocation.targets import Targets, weights
from helios_core.decision import Approved, Context, Denied, Verdict
from helios_core.errors import HeliosError
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import CloseReason
from helios_core.trading.position import Execution
from helios_live.ledger import Ledger
from helios_live.ledger.allocation import Rebalance
from helios_live.ledger.writer import LedgerWriter
from helios_live.settings import AllocationSettings
from helios_live.trading.desk import Desk

log = logging.getLogger("helios.live")
MONDAY = 0
MAX_EVENTS = 1000
Record = Callable[..., Awaitable[None]]
# A backtest's optimiser: (the engine's time, the predictions of the views' window as
# (pair, p_buy, p_sell, p_hold), the targets in force) -> new targets, None to keep them.
Prediction = tuple[str, float, float, float]
Allocator = Callable[[float, list[Prediction], Targets | None], Targets | None]


class Book:
    """The targets in force and where they came from."""

    def __init__(self) -> None:
        self.targets: Targets | None = None
        self.targets_id: int | None = None
        self.error = ""

    def set(self, targets: Targets | None, targets_id: int | None) -> bool:
        changed = targets is not None and (targets_id != self.targets_id or targets != self.targets)
        if targets is not None:
            self.targets, self.targets_id = targets, targets_id
        return changed


class AllocationCap:
    """The chain's allocation step (before the portfolio guard, which checks the size it leaves)."""

    name = "allocation"

    def __init__(self, book: Book, desk: Desk, band: float) -> None:
        self.book, self.desk, self.band = book, desk, band

    def __call__(self, context: Context) -> Verdict:
        targets = self.book.targets
        if targets is None:
            return Approved(self.name, "no targets yet: entries not capped")
        sizing = context.sizing
        if sizing is None:
            return Denied(self.name, "no sizing to cap")
        account = self.desk.account
        held = weights(account.positions.values(), account.marks, account.equity).get(context.pair, 0.0)
        target = targets.weight(context.pair)
        cap = entry_cap(target, self.band, held, sizing.leverage)
        where = f"target {target:.1%} + band {self.band:.1%}, held {held:.1%}"
        if sizing.fraction <= cap:
            return Approved(self.name, f"within {where}")
        if cap <= 0:
            return Denied(self.name, f"{context.pair} has no room: {where}")
        context.sizing = replace(sizing, fraction=cap)
        return Approved(self.name, f"scaled {sizing.fraction:.2%} -> {cap:.2%} of equity to stay within {where}")


class Allocation:
    def __init__(
        self,
        settings: AllocationSettings,
        desk: Desk,
        writer: LedgerWriter,
        ledger: Ledger,
        record: Record,
        now: Callable[[], float],
        allocator: Allocator | None = None,
    ) -> None:
        """`now`: the engine's time (the market's clock)."""
        self.settings, self.desk, self.writer, self.ledger, self.record = settings, desk, writer, ledger, record
        self.now = now
        self.allocator = allocator
        self.book = Book()
        self.last: Rebalance | None = None
        self.rebalances = 0
        self.errors = 0
        self._acted: dict[str, int] = {}  # security event id -> the severity its emergency trimmed at

    @property
    def reads_ledger(self) -> bool:
        """Whether the targets come from the ledger (the Dagster asset's), not from an allocator."""
        return self.settings.enabled and self.allocator is None

    def step(self) -> AllocationCap:
        return AllocationCap(self.book, self.desk, self.settings.band)

    async def refresh(self) -> None:
        """Read the newest targets from the ledger (the Dagster asset writes them)."""
        try:
            found = await self.writer.run(self.ledger.latest_targets_row)
        except HeliosError as exc:  # the targets as last read stay in force
            self.book.error = str(exc)
            return
        self.book.error = ""
        if found is not None and self.book.set(found[1], found[0]):
            targets = found[1]
            await self.record("ALLOCATION_TARGETS", targets_id=found[0], method=targets.method,
                              fallback=targets.fallback, weights=dict(targets.weights))  # fmt: skip

    async def check(self, now: float) -> Rebalance | None:
        """The daily check (Monday's is the weekly pass); a backtest computes its targets first."""
        if self.allocator is not None:
            await self._allocate(now)
        targets = self.book.targets
        if targets is None:
            return None
        weekly = as_datetime(now).weekday() == MONDAY
        reason, threshold = (
            (Reason.WEEKLY, self.settings.weekly_drift) if weekly else (Reason.DAILY, self.settings.drift)
        )
        now_weights = self._weights()
        limits = drift_limits(now_weights, targets.weights, threshold)
        detail = f"drift above {threshold:.1%} of equity from target"
        return await self._rebalance(reason, limits, now, detail)

    async def emergency(
        self, event_id: str, severity: int, pairs: list[str], factor: float, why: str, now: float
    ) -> Rebalance | None:
        """A risk event: the pairs it names are trimmed to `factor` of where they are (or of their
        target, when lower); nothing is bought. Once per event and severity: an event seen again
        (every check re-reports it while it lasts) does not halve the position again."""
        if self._acted.get(event_id, -1) >= severity:
            return None
        self._acted[event_id] = severity
        while len(self._acted) > MAX_EVENTS:  # the oldest go first: dicts keep their order
            del self._acted[next(iter(self._acted))]
        targets = self.book.targets
        limits = emergency_limits(self._weights(), None if targets is None else targets.weights, pairs, factor)
        return await self._rebalance(Reason.EMERGENCY, limits, now, why)

    def status(self) -> dict[str, Any]:
        targets = self.book.targets
        return {
            "enabled": self.settings.enabled,
            # what the targets read is in GET /api/portfolio/targets; the status stays small
            "targets": None if targets is None else {**targets.as_dict(), "inputs": None, "id": self.book.targets_id},
            "weights": {p: round(w, 6) for p, w in self._weights().items()},
            "error": self.book.error,
            "rebalances": self.rebalances,
            "errors": self.errors,
            "targets_age_s": None if targets is None else round(self.now() - targets.as_of.timestamp(), 1),
            "last_rebalance": None if self.last is None else {"uid": self.last.uid, "reason": self.last.reason},
        }

    # --------------------------------------------------------------------------------------------
    async def _allocate(self, now: float) -> None:
        assert self.allocator is not None  # noqa: S101 -- the caller checked
        since, until = as_datetime(now - self.settings.view_hours * 3600), as_datetime(now)
        try:
            rows = await self.writer.run(self.ledger.prediction_probabilities, since, until)
        except HeliosError as exc:
            self.errors += 1
            log.error("allocation: the views' predictions could not be read: %s", exc)
            return
        targets = self.allocator(now, rows, self.book.targets)
        if targets is None:
            return
        try:
            targets_id = await self.writer.run(self.ledger.record_targets, targets, "backtest")
        except HeliosError as exc:
            self.errors += 1
            log.error("allocation targets not stored: %s", exc)
            targets_id = None
        self.book.set(targets, targets_id)

    def _weights(self) -> dict[str, float]:
        account = self.desk.account
        return weights(account.positions.values(), account.marks, account.equity)

    async def _rebalance(
        self, reason: Reason, limits: Mapping[str, float], now: float, detail: str
    ) -> Rebalance | None:
        account = self.desk.account
        plan = trims(account.positions.values(), account.marks, account.equity, limits)
        if not plan:
            return None
        before = self._weights()
        orders = [await self._trim(t, now) for t in plan]
        after = self._weights()
        for order in orders:  # a fill still to come (a backtest's next open): the weight it is sent to reach
            if order["status"] == "PENDING":
                after[order["pair"]] = order["target_weight"]
        targets = self.book.targets
        rebalance = Rebalance(
            uid=_uid(reason, now, orders),
            at=as_datetime(now),
            reason=str(reason),
            detail=detail,
            targets_id=self.book.targets_id,
            target_weights={} if targets is None else dict(targets.weights),
            weights_before=before,
            weights_after=after,
            orders=tuple(orders),
        )
        try:
            await self.writer.run(self.ledger.record_rebalance, rebalance)
        except HeliosError as exc:  # the engine event below still says what happened
            self.errors += 1
            log.error("rebalance %s not stored: %s", rebalance.uid, exc)
        self.rebalances += 1
        self.last = rebalance
        await self.record("REBALANCE", None, uid=rebalance.uid, reason=rebalance.reason, detail=detail,
                          orders=len(orders), filled=sum(1 for o in orders if o["status"] == "FILLED"))  # fmt: skip
        return rebalance

    async def _trim(self, trim: Trim, now: float) -> dict[str, Any]:
        order: dict[str, Any] = {"position_key": trim.key, "pair": trim.pair, "quantity": trim.quantity,
                                 "weight_before": trim.weight_before, "target_weight": trim.weight_after,
                                 "close": trim.close}  # fmt: skip
        result: Execution | str | None
        if trim.close:
            result = await self.desk.request_close(trim.key, CloseReason.REBALANCE, now)
        else:
            result = await self.desk.trim(trim.key, trim.quantity, now)
        if isinstance(result, Execution):
            o = result.order
            order |= {"client_order_id": o.client_order_id, "status": str(o.status), "filled": o.filled_quantity,
                      "price": o.average_price, "fees": o.fees}  # fmt: skip
        else:
            order |= {"status": "PENDING" if result is None else "NOT_PLACED", "error": result}
        return order


def _uid(reason: Reason, now: float, orders: list[dict[str, Any]]) -> str:
    """Named by what it did, so two rebalances in one second (a check, then an emergency) are two rows."""
    digest = hashlib.sha256(json.dumps(orders, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{reason}-{int(now)}-{digest}"
