"""Group commit: everything the engine hands the ledger while the writer thread is busy goes
into its next flush, so ten pairs closing the same minute cost two transactions (their
decisions with their trades and snapshots, then the outcomes that minute settles), not twenty."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from helios_live.engine.pair import Pending
from helios_live.ledger import Ledger, Outcome, PredictionRecord
from helios_live.ledger.records import SnapshotRecord, TradeRecord

Stored = tuple[
    int | None, float | None
]  # row id (None: already there, or no prediction), seconds since the closing message
Due = list[tuple[Pending, str, float]]  # settled predictions: (pending, actual label, forward return)


@dataclass(frozen=True, slots=True)
class Unit:
    """What must land together: a decision (with its trade), closes, and the snapshots after them."""

    prediction: PredictionRecord | None
    received: float | None
    closes: tuple[TradeRecord, ...]
    snapshots: tuple[SnapshotRecord, ...]
    future: Future[Stored]


class LedgerWriter:
    def __init__(self, ledger: Ledger, executor: ThreadPoolExecutor) -> None:
        self.ledger = ledger
        self.executor = executor
        self._lock = threading.Lock()
        self._units: list[Unit] = []
        self._outcomes: list[tuple[Due, Future[list[Outcome]]]] = []
        self._scheduled = False

    def submit(
        self,
        record: PredictionRecord | None,
        received: float | None = None,
        closes: Sequence[TradeRecord] = (),
        snapshots: Sequence[SnapshotRecord] = (),
    ) -> Future[Stored]:
        """Queue one unit; `received` is the `perf_counter()` at which its closing message arrived."""
        future: Future[Stored] = Future()
        with self._lock:
            self._units.append(Unit(record, received, tuple(closes), tuple(snapshots), future))
            self._schedule()
        return future

    def submit_outcomes(self, due: Due) -> Future[list[Outcome]]:
        """Queue outcomes; each prediction was submitted earlier, so its row exists by the flush."""
        future: Future[list[Outcome]] = Future()
        with self._lock:
            self._outcomes.append((due, future))
            self._schedule()
        return future

    def _schedule(self) -> None:
        if not self._scheduled:  # the writer thread runs jobs in order: one flush per batch is enough
            self._scheduled = True
            self.executor.submit(self._flush)

    def _flush(self) -> None:
        with self._lock:
            units, self._units = self._units, []
            outcomes, self._outcomes = self._outcomes, []
            self._scheduled = False
        if units:
            self._store(units)
        if outcomes:
            self._fill(outcomes)

    def _store(self, batch: list[Unit]) -> None:
        start = time.perf_counter()
        records = [
            replace(u.prediction, latency_ms=(start - u.received) * 1000)
            if u.received is not None and u.prediction is not None
            else u.prediction
            for u in batch
        ]
        predictions = [r for r in records if r is not None]
        try:
            ids = iter(
                self.ledger.write(
                    predictions,
                    [c for u in batch for c in u.closes],
                    [s for u in batch for s in u.snapshots],
                )
            )
        except Exception as exc:  # handed to each waiting future: the engine reports it per unit
            if len(batch) > 1:  # one bad unit must not take the others down with it
                for unit in batch:
                    self._store([unit])
                return
            batch[0].future.set_exception(exc)
            return
        done = time.perf_counter()
        for unit, record in zip(batch, records, strict=True):
            row = next(ids) if record is not None else None
            unit.future.set_result((row, done - unit.received if unit.received is not None else None))

    def _fill(self, batch: list[tuple[Due, Future[list[Outcome]]]]) -> None:
        try:
            settled = [
                [
                    Outcome(row, actual, fwd)
                    for pending, actual, fwd in due
                    if (row := pending.prediction_id()) is not None
                ]
                for due, _ in batch
            ]
            self.ledger.fill_outcomes([o for outcomes in settled for o in outcomes])
        except Exception as exc:  # as above
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcomes in zip(batch, settled, strict=True):
            future.set_result(outcomes)
