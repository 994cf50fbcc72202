"""Group commit: predictions and outcomes that arrive while the writer thread is busy go into
its next flush, so ten pairs closing the same minute cost two transactions (their predictions,
the outcomes that minute settles), not twenty."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from helios_live.engine.pair import Pending
from helios_live.ledger import Ledger, Outcome, PredictionRecord

Stored = tuple[int | None, float | None]  # row id (None: already there), seconds since the closing message
Due = list[tuple[Pending, str, float]]  # settled predictions: (pending, actual label, forward return)


class LedgerWriter:
    def __init__(self, ledger: Ledger, executor: ThreadPoolExecutor) -> None:
        self.ledger = ledger
        self.executor = executor
        self._lock = threading.Lock()
        self._predictions: list[tuple[PredictionRecord, float | None, Future[Stored]]] = []
        self._outcomes: list[tuple[Due, Future[list[Outcome]]]] = []
        self._scheduled = False

    def submit(self, record: PredictionRecord, received: float | None) -> Future[Stored]:
        """Queue `record`; `received` is the `perf_counter()` at which its closing message arrived."""
        future: Future[Stored] = Future()
        with self._lock:
            self._predictions.append((record, received, future))
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
            predictions, self._predictions = self._predictions, []
            outcomes, self._outcomes = self._outcomes, []
            self._scheduled = False
        if predictions:
            self._store(predictions)
        if outcomes:
            self._fill(outcomes)

    def _store(self, batch: list[tuple[PredictionRecord, float | None, Future[Stored]]]) -> None:
        start = time.perf_counter()
        records = [
            replace(record, latency_ms=(start - received) * 1000) if received is not None else record
            for record, received, _ in batch
        ]
        try:
            ids = self.ledger.add_predictions(records)
        except Exception as exc:  # handed to each waiting future: the engine reports it per record
            for _, _, future in batch:
                future.set_exception(exc)
            return
        done = time.perf_counter()
        for (_, received, future), row in zip(batch, ids, strict=True):
            future.set_result((row, done - received if received is not None else None))

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
            self.ledger.fill_outcomes([o for outcomes in settled for o in outcomes if o is not None])
        except Exception as exc:  # as above
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcomes in zip(batch, settled, strict=True):
            future.set_result([o for o in outcomes if o is not None])


def _outcome(pending: Pending, actual: str, fwd: float) -> Outcome | None:
    """None for a prediction the ledger already had (stored by an earlier run, scored there)."""
    row = pending.prediction_id()
    return None if row is None else Outcome(row, actual, fwd)
