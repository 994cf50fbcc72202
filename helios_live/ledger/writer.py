"""Group commit, one transaction per loop turn: everything the engine hands the ledger during one
turn of the event loop (or while the writer thread is busy) goes into one flush, so ten pairs
closing the same minute cost one transaction holding their decisions with what they traded, the
closes of that minute and the outcomes it settles, not twenty.

While the database is unreachable the flushes go to the spool (spool.py) instead, in order,
and the spool is retried every `retry_s`; decisions keep being made. The stated rule for
entries (docs/live.md): without a spool, none opens while writes fail; with one, entries stop
only when it is full (or cannot be written), and exits always run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from helios_core.timeframes import as_datetime
from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.position import Execution
from helios_live.ledger.records import DecisionRef, Outcome, PredictionRecord, Unit
from helios_live.ledger.spool import DRAINED, Entry, Event, Spool, SpoolError
from helios_live.ledger.store import Ledger, LedgerConflict, LedgerError

log = logging.getLogger("helios.live")
HOLD_TURNS = 200  # a flush waits at most this many loop turns for a busy engine


class Stored(NamedTuple):
    """What became of a submitted unit's decision."""

    row: int | None  # its row id; None: already there, no decision, or spooled
    latency: float | None  # seconds from its closing message to the commit (None: not measured)
    spooled: bool = False  # waiting in the spool for the database


Settled = tuple["Future[Stored]", str, float]
"""A prediction's insert, its actual label and its forward return."""
LateOpen = tuple[DecisionRef | None, Execution]
"""A position opened by a fill that came after its decision, and that decision."""
Due = list[tuple[list[Settled], "Future[list[Outcome]]"]]
"""Outcomes as submitted, each group with the future it answers."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """A unit as submitted: at most one decision, and when its closing message arrived."""

    prediction: PredictionRecord | None
    received: float | None
    closes: tuple[Execution, ...]
    snapshots: tuple[PortfolioSnapshot, ...]
    opens: tuple[LateOpen, ...]
    future: Future[Stored]


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
    def __init__(
        self,
        ledger: Ledger,
        executor: ThreadPoolExecutor,
        now: Callable[[], float] = time.time,
        *,
        spool: Spool | None = None,
        retry_s: float = 30.0,
        on_commit: Callable[[float], None] | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.ledger = ledger
        self.executor = executor
        self.health = WriteHealth(now)
        self.spool, self.retry_s = spool, retry_s
        self.on_commit = on_commit  # seconds each commit took, for the stage figures
        # Whether decisions are under way: while they are, the flush waits, so that a minute's
        # closes, outcomes and decisions share one transaction and the writer thread does not
        # take the GIL from the decisions still being made.
        self.busy = busy
        self._held = 0  # loop turns the planned flush has waited for `busy`
        self.spool_error = ""  # why the spool itself failed (then entries stop)
        self.dropped = 0  # decisions that opened nothing, not spooled because the spool was full
        self.drained = 0  # entries landed from the spool, ever
        self._lock = threading.Lock()
        self._units: list[Submitted] = []
        self._outcomes: Due = []
        self._keys: dict[Future[Stored], DecisionRef] = {}  # decisions whose row id is not known yet
        self._scheduled = False  # a flush is planned for what is waiting
        self._handed = False  # ...and is on the writer thread's queue
        self._waiting_since: float | None = None  # when the oldest write not yet done was handed over
        self._tried: float | None = None  # when the database was last tried while spooling

    def backlog(self) -> tuple[int, float | None]:
        """Writes handed over and not yet done, and when the oldest of them was (None: none)."""
        with self._lock:
            return len(self._units) + len(self._outcomes), self._waiting_since

    def refusing(self) -> str:
        """Why entries must stop now by the stated rule; empty while they may open."""
        health = self.health
        if not health.failing:
            return ""
        if self.spool is None:
            return f"ledger writes failing ({health.failing} in a row): entries stopped until one succeeds"
        if self.spool_error:
            return f"ledger writes failing and the spool cannot be written: {self.spool_error}"
        if self.spool.full:
            return (
                f"ledger unreachable and its spool is full ({self.spool.decisions} decisions):"
                " entries refused until it lands"
            )
        return ""

    # the event loop's side ----------------------------------------------------------------------
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
            if record is not None:
                self._keys[future] = DecisionRef(record.pair, record.candle_ts, record.model_version)
            self._schedule()
        return future

    def submit_outcomes(self, due: list[Settled]) -> Future[list[Outcome]]:
        """Queue outcomes; each prediction was submitted earlier, so its row exists by the flush."""
        future: Future[list[Outcome]] = Future()
        with self._lock:
            self._outcomes.append((due, future))
            self._schedule()
        return future

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """`fn(*args)` on the writer thread after everything submitted so far."""
        self.hand_over()
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def land(self) -> None:
        """Land what the spool holds (at a start, on the writer thread): LedgerError if the
        database does not take it, since the ledger is not complete without it."""
        spool = self.spool
        if spool is None or not spool.entries:
            return
        self._drain()
        if spool.entries:
            raise LedgerError(
                f"ledger spool {spool.path} holds {spool.entries} writes the database has not taken:"
                f" {self.health.error}"
            )

    def retry(self) -> None:
        """Try the database again now if the spool holds anything (a timer's job)."""
        self.executor.submit(self._retry)

    def hand_over(self) -> None:
        """Queue the planned flush on the writer thread now."""
        with self._lock:
            if not self._scheduled or self._handed:
                return
            self._handed = True
            self._held = 0
        self.executor.submit(self._flush)

    def _turn_over(self) -> None:
        """The end of a loop turn: hand the planned flush over, unless the engine is still busy
        (for at most `HOLD_TURNS` turns: the engine's own awaits must never wait on this)."""
        if self.busy is not None and self._held < HOLD_TURNS and self.busy():
            self._held += 1
            asyncio.get_running_loop().call_soon(self._turn_over)
            return
        self.hand_over()

    def _schedule(self) -> None:
        if self._waiting_since is None:
            self._waiting_since = self.health.now()
        if self._scheduled:
            return
        self._scheduled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: no turn to wait for
            self._handed = True
            self.executor.submit(self._flush)
            return
        loop.call_soon(self._turn_over)

    # the writer thread's side -------------------------------------------------------------------
    def _flush(self) -> None:
        started = self.health.now()
        with self._lock:
            units, self._units = self._units, []
            outcomes, self._outcomes = self._outcomes, []
            self._scheduled = self._handed = False
        if units or outcomes:
            try:
                self._write(units, outcomes)
            except Exception as exc:  # a bug: every waiting future hears of it, and the engine carries on
                log.exception("ledger flush failed")
                self._failed([u for u in units if not u.future.done()], [d for d in outcomes if not d[1].done()], exc)
        with self._lock:  # what came in meanwhile has waited at most since this flush began
            self._waiting_since = started if self._units or self._outcomes else None

    def _write(self, batch: list[Submitted], due: Due) -> None:
        start = time.perf_counter() if any(u.received is not None for u in batch) else 0.0
        units = [Unit(_stamped(u, start), u.closes, u.snapshots, u.opens) for u in batch]
        outcomes = [self._outcomes_of(settled) for settled, _ in due]
        everything = [o for group in outcomes for o in group]
        if self._spooling():
            self._spool(batch, units, everything, due)
            return
        try:
            ids, scored = self.ledger.commit(units, everything)
        except LedgerConflict as exc:  # one bad unit must not take the others down with it
            if len(units) + len(due) > 1:
                for one, unit in zip(batch, units, strict=True):
                    self._write_alone(one, unit)
                for (_, future), group in zip(due, outcomes, strict=True):
                    self._score_alone(group, future)
                return
            self._failed(batch, due, exc)
            return
        except LedgerError as exc:
            if self.spool is None:
                self._failed(batch, due, exc)
                return
            self.health.fail(exc)
            self._tried = self.health.now()
            self._spool(batch, units, everything, due)
            return
        self._done(batch, ids, start)
        self._scored(due, outcomes, scored)

    def _write_alone(self, one: Submitted, unit: Unit) -> None:
        try:
            ids, _ = self.ledger.commit([unit])
        except Exception as exc:
            self._failed([one], [], exc)
            return
        self._done([one], ids, 0.0)

    def _score_alone(self, group: list[Outcome], future: Future[list[Outcome]]) -> None:
        try:
            _, rows = self.ledger.commit((), group)
        except Exception as exc:
            self.health.fail(exc)
            future.set_exception(exc)
            return
        future.set_result(_with_rows(group, rows))

    def _outcomes_of(self, settled: list[Settled]) -> list[Outcome]:
        out = []
        for stored, actual, fwd in settled:
            with self._lock:  # an outcome comes once: the key is not needed after it
                key = self._keys.pop(stored, None)
            if key is not None:  # its row lands in this flush, or waits in the spool: name it by key
                out.append(Outcome(None, actual, fwd, ref=key))
            elif stored.exception() is None and (row := stored.result().row) is not None:
                out.append(Outcome(row, actual, fwd))  # (a decision that was not stored has nothing to score)
        return out

    def _done(self, batch: list[Submitted], ids: list[list[int | None]], start: float) -> None:
        self.health.ok()
        done = time.perf_counter() if start else 0.0
        if start and self.on_commit is not None:
            self.on_commit(done - start)
        for unit, rows in zip(batch, ids, strict=True):
            with self._lock:
                self._keys.pop(unit.future, None)
            latency = done - unit.received if unit.received is not None else None
            unit.future.set_result(Stored(rows[0] if rows else None, latency))

    def _scored(
        self,
        due: Due,
        outcomes: list[list[Outcome]],
        rows: list[int | None],
    ) -> None:
        at = 0
        for (_, future), group in zip(due, outcomes, strict=True):
            future.set_result(_with_rows(group, rows[at : at + len(group)]))
            at += len(group)

    def _failed(self, batch: list[Submitted], due: Due, exc: BaseException) -> None:
        self.health.fail(exc)
        for unit in batch:
            with self._lock:
                self._keys.pop(unit.future, None)
            unit.future.set_exception(exc)
        for _, future in due:
            future.set_exception(exc)

    # the spool ---------------------------------------------------------------------------------
    def _spooling(self) -> bool:
        """Whether writes go to the spool now: it holds entries the database has not taken yet
        (new ones must land after them), after a retry when one is due."""
        spool = self.spool
        if spool is None or not spool.entries:
            return False
        now = self.health.now()
        if self._tried is None or now - self._tried >= self.retry_s:
            self._drain()
        return bool(spool.entries)

    def _spool(
        self,
        batch: list[Submitted],
        units: list[Unit],
        outcomes: list[Outcome],
        due: Due,
    ) -> None:
        spool = self.spool
        assert spool is not None  # noqa: S101 -- only called with one
        if spool.full:  # bounded: a decision that opened nothing is not kept (entries are refused)
            keep = [not _only_a_decision(u) for u in units]
            lost = [one for one, k in zip(batch, keep, strict=True) if not k]
            batch = [one for one, k in zip(batch, keep, strict=True) if k]
            units = [u for u, k in zip(units, keep, strict=True) if k]
            self.dropped += len(lost)
            full = SpoolError(f"ledger spool {spool.path} is full ({spool.decisions} decisions): decision not kept")
            for one in lost:
                with self._lock:
                    self._keys.pop(one.future, None)
                one.future.set_exception(full)
        try:
            spool.append(Entry(tuple(units), tuple(outcomes)))
        except SpoolError as exc:
            self.spool_error = str(exc)
            self._failed(batch, due, exc)
            return
        self.spool_error = ""
        for unit in batch:  # their keys stay: their outcomes must name them by key
            unit.future.set_result(Stored(None, None, spooled=True))
        for _, future in due:
            future.set_result([])

    def event(self, kind: str, at: Any, detail: dict[str, Any], pair: str | None) -> None:
        """Record an engine event (on the writer thread, in order with the flushes); into the
        spool while the database is unreachable."""
        event = Event(kind, at, dict(detail), pair)
        if not self._spooling():
            try:
                self.ledger.commit((), (), [event])
            except LedgerConflict:
                raise
            except LedgerError as exc:
                self.health.fail(exc)
                if self.spool is None:
                    raise
                self._tried = self.health.now()
            else:
                self.health.ok()
                return
        assert self.spool is not None  # noqa: S101 -- spooling, or failed with a spool
        try:
            self.spool.append(Entry(events=(event,)))
        except SpoolError as exc:
            self.spool_error = str(exc)
            raise
        self.spool_error = ""

    def _retry(self) -> None:
        try:
            if self.spool is not None and self.spool.entries:
                self._drain()
        except Exception:  # a timer's job: nobody waits on it, so say it here
            log.exception("ledger spool retry failed")

    def _drain(self) -> None:
        """Land the spool's entries in the ledger, in order, with the marker that makes each land once."""
        spool = self.spool
        assert spool is not None  # noqa: S101 -- only called with one
        self._tried = self.health.now()
        try:
            through, units_done = self.ledger.spooled_through(spool.id)
            entries = spool.read(through)
            if entries and units_done:  # a crash left the first entry landed in part
                seq, first = entries[0]
                entries[0] = (seq, replace(first, units=first.units[units_done:]))
            if entries:
                try:
                    self.ledger.commit(*_together(entries, self._marker(spool, entries[-1][0], entries)))
                except LedgerConflict:  # entry by entry, unit by unit: a bad one is refused, not retried for ever
                    for seq, entry in entries:
                        self._land_alone(spool, seq, entry, units_done if seq == entries[0][0] else 0)
            spool.remove(entries[-1][0] if entries else through)
        except (LedgerError, SpoolError) as exc:
            self.health.fail(exc)
            return
        self.drained += len(entries)
        self.health.ok()
        log.warning("ledger spool landed: %d entries", len(entries))

    def _land_alone(self, spool: Spool, seq: int, entry: Entry, done: int) -> None:
        try:
            self.ledger.commit(entry.units, entry.outcomes, [*entry.events, self._marker(spool, seq, [(seq, entry)])])
            return
        except LedgerConflict:
            pass
        # Each unit in a transaction of its own, with a marker of how far the entry got.
        for i, unit in enumerate(entry.units, start=done + 1):
            marker = self._marker(spool, seq - 1, [], units=i)
            try:
                self.ledger.commit([unit], (), [marker])
            except LedgerConflict as exc:
                log.error("ledger spool entry %d, unit %d refused by the ledger, not stored: %s", seq, i, exc)
                refused = Event("LEDGER_SPOOL_REFUSED", marker.at, {"entry": seq, "unit": i, "error": str(exc)})
                self.ledger.commit((), (), [refused, marker])
        self.ledger.commit((), entry.outcomes, [*entry.events, self._marker(spool, seq, [(seq, entry)])])

    def _marker(self, spool: Spool, through: int, entries: list[tuple[int, Entry]], units: int = 0) -> Event:
        """The engine event that says the spool's entries up to `through` are in the ledger, and
        `units` units of the entry after it."""
        detail = {
            "spool": spool.id,
            "through": through,
            "units": units,
            "entries": len(entries),
            "decisions": sum(e.decisions for _, e in entries),
        }
        return Event(DRAINED, as_datetime(self.health.now()), detail)


def _only_a_decision(unit: Unit) -> bool:
    """A decision that traded nothing, and nothing else: what a full spool does not keep."""
    return not (unit.closes or unit.snapshots or unit.opens) and all(p.execution is None for p in unit.predictions)


def _stamped(unit: Submitted, start: float) -> tuple[PredictionRecord, ...]:
    """The unit's decision, with the milliseconds from its closing message to this flush."""
    if unit.prediction is None:
        return ()
    if unit.received is None:
        return (unit.prediction,)
    return (replace(unit.prediction, latency_ms=(start - unit.received) * 1000),)


def _together(entries: list[tuple[int, Entry]], marker: Event) -> tuple[list[Unit], list[Outcome], list[Event]]:
    units = [u for _, e in entries for u in e.units]
    outcomes = [o for _, e in entries for o in e.outcomes]
    return units, outcomes, [*(ev for _, e in entries for ev in e.events), marker]


def _with_rows(outcomes: list[Outcome], rows: Sequence[int | None]) -> list[Outcome]:
    """The outcomes that scored a prediction, each named by its row."""
    return [Outcome(row, o.actual_outcome, o.outcome_return) for o, row in zip(outcomes, rows, strict=True) if row]
