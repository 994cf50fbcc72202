"""Group commit: everything the engine hands the ledger while the writer thread is busy goes
into its next flush, so ten pairs closing the same minute cost two transactions (their
decisions with their executions and snapshots, then the outcomes that minute settles), not twenty."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.position import Execution
from helios_live.ledger.records import DecisionRef, Outcome, PredictionRecord, Unit
from helios_live.ledger.store import Ledger

log = logging.getLogger("helios.live")
Stored = tuple[int | None, float | None]
"""A decision's row id (None: already there, or no decision) and the seconds since its closing message."""
Settled = tuple[Future[Stored], str, float]
"""A prediction's insert, its actual label and its forward return."""
LateOpen = tuple[DecisionRef | None, Execution]
"""A position opened by a fill that came after its decision, and that decision."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """A unit as submitted: at most one decision, and when its closing message arrived."""

    prediction: PredictionRecord | None
    received: float | None
    closes: tuple[Execution, ...]
    snapshots: tuple[PortfolioSnapshot, ...]
    opens: tuple[LateOpen, ...]
    future: Future[Stored]


def stored_id(future: Future[Stored]) -> int | None:
    """The row id of a submitted decision; blocks until it is written (call it on the writer thread)."""
    return future.result()[0]


class WriteHealth:
    """Whether the ledger takes writes: failures since the last write that succeeded, and the
    first of them. Every write path reports here (the writer's flushes, the engine's events)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.failing = 0
        self.failed = 0  # ever
        self.since: float | None = None
        self.error = ""

    def fail(self, exc: BaseException) -> None:
        if not self.failing:
            self.since = self.now()
        self.failing += 1
        self.failed += 1
        self.error = f"{type(exc).__name__}: {exc}"
        log.error("ledger write failed (%d in a row): %s", self.failing, self.error)

    def ok(self) -> None:
        if self.failing:
            log.warning("ledger writes succeed again after %d failures", self.failing)
        self.failing, self.since = 0, None


class LedgerWriter:
    def __init__(self, ledger: Ledger, executor: ThreadPoolExecutor, now: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.executor = executor
        self.health = WriteHealth(now)
        self._lock = threading.Lock()
        self._units: list[Submitted] = []
        self._outcomes: list[tuple[list[Settled], Future[list[Outcome]]]] = []
        self._scheduled = False
        self._waiting_since: float | None = None  # when the oldest write not yet done was handed over

    def backlog(self) -> tuple[int, float | None]:
        """Writes handed over and not yet done, and when the oldest of them was (None: none)."""
        with self._lock:
            return len(self._units) + len(self._outcomes), self._waiting_since

    def submit(
        self,
        record: PredictionRecord | None,
        received: float | None = None,
        closes: Sequence[Execution] = (),
        snapshots: Sequence[PortfolioSnapshot] = (),
        opens: Sequence[LateOpen] = (),
    ) -> Future[Stored]:
        """Queue one unit; `received` is the `perf_counter()` at which its closing message arrived
        (None for a replayed one: no latency is measured)."""
        future: Future[Stored] = Future()
        with self._lock:
            self._units.append(Submitted(record, received, tuple(closes), tuple(snapshots), tuple(opens), future))
            self._schedule()
        return future

    def submit_outcomes(self, due: list[Settled]) -> Future[list[Outcome]]:
        """Queue outcomes; each prediction was submitted earlier, so its row exists by the flush."""
        future: Future[list[Outcome]] = Future()
        with self._lock:
            self._outcomes.append((due, future))
            self._schedule()
        return future

    def _schedule(self) -> None:
        if self._waiting_since is None:
            self._waiting_since = self.health.now()
        if not self._scheduled:  # the writer thread runs jobs in order: one flush per batch is enough
            self._scheduled = True
            self.executor.submit(self._flush)

    def _flush(self) -> None:
        started = self.health.now()
        with self._lock:
            units, self._units = self._units, []
            outcomes, self._outcomes = self._outcomes, []
            self._scheduled = False
        if units:
            self._store(units)
        if outcomes:
            self._fill(outcomes)
        with self._lock:  # what came in meanwhile has waited at most since this flush began
            self._waiting_since = started if self._units or self._outcomes else None

    def _store(self, batch: list[Submitted]) -> None:
        start = time.perf_counter() if any(u.received is not None for u in batch) else 0.0
        records = [
            replace(u.prediction, latency_ms=(start - u.received) * 1000)
            if u.received is not None and u.prediction is not None
            else u.prediction
            for u in batch
        ]
        units = [
            Unit((r,) if r is not None else (), u.closes, u.snapshots, u.opens)
            for u, r in zip(batch, records, strict=True)
        ]
        try:
            ids = self.ledger.write_units(units)
        except Exception as exc:  # handed to each waiting future: the engine reports it per unit
            if len(batch) > 1:  # one bad unit must not take the others down with it
                for unit in batch:
                    self._store([unit])
                return
            self.health.fail(exc)
            batch[0].future.set_exception(exc)
            return
        self.health.ok()
        done = time.perf_counter() if start else 0.0
        for unit, rows in zip(batch, ids, strict=True):
            row = rows[0] if rows else None
            unit.future.set_result((row, done - unit.received if unit.received is not None else None))

    def _fill(self, batch: list[tuple[list[Settled], Future[list[Outcome]]]]) -> None:
        try:
            settled = [
                [Outcome(row, actual, fwd) for stored, actual, fwd in due if (row := stored_id(stored)) is not None]
                for due, _ in batch
            ]
            self.ledger.fill_outcomes([o for outcomes in settled for o in outcomes])
        except Exception as exc:  # as above
            self.health.fail(exc)
            for _, future in batch:
                future.set_exception(exc)
            return
        self.health.ok()
        for (_, future), outcomes in zip(batch, settled, strict=True):
            future.set_result(outcomes)
