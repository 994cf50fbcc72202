"""The ledger writer: one transaction per loop turn, and the spool that keeps every write while
the database is unreachable, landing it in order and once when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from helios_live.ledger import Ledger, LedgerError
from helios_live.ledger.records import Outcome, Unit
from helios_live.ledger.spool import DRAINED, Entry, Spool, SpoolError
from helios_live.ledger.writer import HOLD_TURNS, LedgerWriter, Stored
from tests.ledger_support import HOUR, T0, closing, record, snapshot, traded


class Flaky(Ledger):
    """A ledger whose database can be cut off, counting the transactions it commits."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.commits = 0

    def commit(self, units: Sequence[Unit], outcomes: Sequence[Outcome] = (), events: Sequence[Any] = ()) -> Any:
        if self.down:
            raise LedgerError(f"ledger {self.url} is unreachable: connection refused")
        result = super().commit(units, outcomes, events)
        self.commits += 1
        return result

    def spooled_through(self, spool: str) -> tuple[int, int]:
        if self.down:
            raise LedgerError(f"ledger {self.url} is unreachable: connection refused")
        return super().spooled_through(spool)


@pytest.fixture
def ledger(tmp_path: Path) -> Flaky:
    ledger = Flaky(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()
    return ledger


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def writer(ledger: Ledger, spool: Spool | None, clock: Clock | None = None) -> LedgerWriter:
    return LedgerWriter(ledger, ThreadPoolExecutor(1), clock or Clock(), spool=spool, retry_s=30.0)


async def settle(w: LedgerWriter) -> None:
    await w.run(lambda: None)


def test_one_loop_turn_is_one_transaction_holding_decisions_closes_and_outcomes(ledger: Flaky) -> None:
    first = [traded(f"P{i}", 0) for i in range(3)]
    ledger.write(predictions=first)
    ledger.commits = 0
    stored_first = [ledger.predictions(pair=f"P{i}").items[0]["id"] for i in range(3)]

    async def turn() -> tuple[list[Stored], list[Outcome], list[Outcome]]:
        w = writer(ledger, None)
        decisions = [w.submit(record(f"P{i}", 1)) for i in range(3)]
        closes = w.submit(None, None, [closing(first[0].execution)], [snapshot(T0 + HOUR)])  # type: ignore[arg-type]
        done = _resolved((stored_first[0], None))
        early = w.submit_outcomes([(done, "BUY", 0.01)])
        # the outcome of a decision submitted in this same turn: it lands in the same transaction
        same = w.submit_outcomes([(decisions[1], "SELL", -0.02)])
        stored = [await asyncio.wrap_future(f) for f in [*decisions, closes]]
        return stored, await asyncio.wrap_future(early), await asyncio.wrap_future(same)

    stored, early, same = asyncio.run(turn())
    assert ledger.commits == 1
    assert all(s.row is not None for s in stored[:3]) and not any(s.spooled for s in stored)
    assert [o.prediction_id for o in early] == [stored_first[0]]
    assert [o.prediction_id for o in same] == [stored[1].row]
    row = ledger.predictions(pair="P1").items[0]
    assert (row["actual_outcome"], row["correct"]) == ("SELL", False)
    assert ledger.positions(status="CLOSED").items[0]["key"] == first[0].execution.position.key  # type: ignore[union-attr]


def _resolved(value: tuple[int, float | None]) -> Any:
    future: Future[Stored] = Future()
    future.set_result(Stored(*value))
    return future


def test_an_outage_spools_everything_and_it_lands_in_order_once(ledger: Flaky, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)
    clock = Clock()

    async def run() -> tuple[list[Stored], list[Stored]]:
        w = writer(ledger, spool, clock)
        before = [await asyncio.wrap_future(w.submit(traded("BTCZAR", 0)))]
        ledger.down = True
        during = [await asyncio.wrap_future(w.submit(record("BTCZAR", h))) for h in range(1, 4)]
        opened = traded("ETHZAR", 4)
        during.append(await asyncio.wrap_future(w.submit(opened, snapshots=[snapshot(T0 + 4 * HOUR)])))
        scored = await asyncio.wrap_future(w.submit_outcomes([(w_future, "BUY", 0.0) for w_future in [_spooled(w)]]))
        assert scored == []
        await w.run(w.event, "MODE", T0, {"why": "during the outage"}, None)
        assert w.refusing() == ""  # the spool has room: entries go on
        assert w.health.failing > 0  # and /health says the database is failing
        ledger.down = False
        clock.t += 10  # not due yet: still spooling, in order behind what waits
        during.append(await asyncio.wrap_future(w.submit(record("BTCZAR", 5))))
        assert spool.entries == 7
        clock.t += 30
        w.retry()
        await settle(w)
        return before, during

    before, during = asyncio.run(run())
    assert all(s.spooled and s.row is None for s in during)
    assert spool.entries == 0 and spool.decisions == 0
    rows = sorted(ledger.predictions(limit=100).items, key=lambda r: r["id"])
    assert [(r["pair"], r["candle_ts"]) for r in rows] == [
        ("BTCZAR", T0),
        *[("BTCZAR", T0 + h * HOUR) for h in range(1, 4)],
        ("ETHZAR", T0 + 4 * HOUR),
        ("BTCZAR", T0 + 5 * HOUR),
    ]
    assert [r["actual_outcome"] for r in rows] == [
        None,
        None,
        "BUY",
        None,
        None,
        None,
    ]  # the outcome named its decision by key
    assert ledger.positions(pair="ETHZAR").items[0]["status"] == "OPEN"
    assert len(ledger.snapshots().items) == 1
    kinds = [e["kind"] for e in ledger.events(limit=10).items]
    assert kinds.count("MODE") == 1 and kinds.count(DRAINED) == 1


def _spooled(w: LedgerWriter) -> Any:
    """The future of the second decision submitted during the outage (BTCZAR hour 2)."""
    return next(f for f, key in w._keys.items() if key.candle_ts == T0 + 2 * HOUR)


def test_a_crash_after_the_spool_landed_does_not_land_it_twice(ledger: Flaky, tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, capacity=1000)

    async def outage() -> None:
        w = writer(ledger, spool)
        ledger.down = True
        for h in range(3):
            await asyncio.wrap_future(w.submit(traded("BTCZAR", h)))
        ledger.down = False

    asyncio.run(outage())
    spool.remove = lambda through: (_ for _ in ()).throw(SystemExit("killed"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        writer(ledger, spool)._drain()
    assert len(ledger.positions().items) == 3  # landed; the spool still holds them

    reopened = Spool(path, capacity=1000)  # the next start
    assert reopened.entries == 3 and reopened.id == spool.id
    writer(ledger, reopened)._drain()
    assert reopened.entries == 0
    assert len(ledger.positions().items) == 3 and len(ledger.predictions().items) == 3


def test_a_full_spool_refuses_entries_and_keeps_exits(ledger: Flaky, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", capacity=2)
    opened = traded("BTCZAR", 0)
    ledger.write(predictions=[opened])

    async def run() -> LedgerWriter:
        w = writer(ledger, spool)
        ledger.down = True
        refused = []
        for h in range(1, 5):
            try:
                await asyncio.wrap_future(w.submit(record("BTCZAR", h)))
            except SpoolError as exc:  # beyond the bound: not kept, and the engine hears so
                refused.append(str(exc))
        assert len(refused) == 2 and "is full (2 decisions)" in refused[0]
        assert "spool is full (2 decisions)" in w.refusing()
        exit_ = closing(opened.execution)  # type: ignore[arg-type]
        await asyncio.wrap_future(w.submit(None, None, [exit_], [snapshot(T0 + 9 * HOUR)]))
        return w

    w = asyncio.run(run())
    assert w.dropped == 2  # decisions that opened nothing, beyond the bound
    ledger.down = False
    w._drain()
    assert ledger.positions().items[0]["status"] == "CLOSED"  # the exit landed
    assert len(ledger.predictions().items) == 3
    assert w.refusing() == ""


def test_without_a_spool_a_failed_write_is_an_error_and_entries_stop(ledger: Flaky) -> None:
    async def run() -> tuple[LedgerWriter, BaseException | None]:
        w = writer(ledger, None)
        ledger.down = True
        future = asyncio.wrap_future(w.submit(record("BTCZAR", 1)))
        try:
            await future
        except LedgerError as exc:
            return w, exc
        return w, None

    w, error = asyncio.run(run())
    assert isinstance(error, LedgerError)
    assert w.refusing().startswith("ledger writes failing")


def test_a_spool_survives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, capacity=10)
    spool.append(Entry((Unit((replace(record(), latency_ms=1.5),)),)))
    again = Spool(path, capacity=10)
    [(seq, entry)] = again.read(0)
    assert seq == 1 and entry.units[0].predictions[0].latency_ms == 1.5 and again.decisions == 1


def test_a_flush_that_breaks_fails_every_waiting_write_and_loses_none_silently(ledger: Flaky) -> None:
    async def run() -> BaseException | None:
        w = writer(ledger, None)
        broken: Future[Any] = Future()
        broken.set_result("not a Stored")  # a bug in whoever hands it over
        unit = asyncio.wrap_future(w.submit(record("BTCZAR", 1)))
        w.submit_outcomes([(broken, "BUY", 0.0)])
        try:
            await unit
        except Exception as exc:  # noqa: BLE001 -- whatever the bug raised reaches the waiting unit
            return exc
        return None

    assert asyncio.run(run()) is not None


def test_the_outcome_of_a_decision_that_was_not_stored_takes_nothing_down_with_it(ledger: Flaky) -> None:
    async def run() -> tuple[list[Stored], list[Outcome]]:
        w = writer(ledger, None)
        ledger.down = True
        lost = w.submit(record("BTCZAR", 1))
        with pytest.raises(LedgerError):
            await asyncio.wrap_future(lost)
        ledger.down = False
        stored = w.submit(record("BTCZAR", 2))
        scored = w.submit_outcomes([(lost, "BUY", 0.0), (stored, "SELL", 0.0)])
        return [await asyncio.wrap_future(stored)], await asyncio.wrap_future(scored)

    stored, scored = asyncio.run(run())
    assert stored[0].row is not None and [o.prediction_id for o in scored] == [stored[0].row]


def test_a_flush_waits_for_the_decisions_under_way_but_never_for_ever(ledger: Flaky) -> None:
    deciding = [True]

    async def run() -> tuple[int, int, int]:
        w = LedgerWriter(ledger, ThreadPoolExecutor(1), Clock(), busy=lambda: deciding[0])
        first = w.submit(record("BTCZAR", 1))
        for _ in range(5):
            await asyncio.sleep(0)
        held = ledger.commits  # nothing yet: a decision is under way
        w.submit(record("BTCZAR", 2))
        deciding[0] = False
        await asyncio.wrap_future(first)
        together = ledger.commits  # both in one transaction
        deciding[0] = True
        third = w.submit(record("BTCZAR", 3))
        for _ in range(HOLD_TURNS + 5):  # a decision that never ends does not hold the ledger
            await asyncio.sleep(0)
        await asyncio.wrap_future(third)
        return held, together, ledger.commits

    assert asyncio.run(run()) == (0, 1, 2)


def test_a_second_outage_lands_too(ledger: Flaky, tmp_path: Path) -> None:
    """Sequence numbers are never reused: the first landing's marker must not hide the second's."""
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)

    async def outage(hours: range) -> None:
        w = writer(ledger, spool)
        ledger.down = True
        for h in hours:
            await asyncio.wrap_future(w.submit(record("BTCZAR", h)))
        ledger.down = False
        w._drain()

    asyncio.run(outage(range(3)))
    asyncio.run(outage(range(3, 6)))
    assert spool.entries == 0 and len(ledger.predictions().items) == 6


def test_a_refused_unit_in_the_spool_keeps_the_others(ledger: Flaky, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)
    ghost = closing(traded("XRPZAR", 0, key="GHOST").execution)  # type: ignore[arg-type]

    async def run() -> None:
        w = writer(ledger, spool)
        ledger.down = True
        good = w.submit(traded("ETHZAR", 1))
        bad = w.submit(None, None, [ghost], [snapshot(T0 + HOUR)])  # a close of a position never opened
        after = w.submit(traded("SOLZAR", 2))
        for future in (good, bad, after):
            await asyncio.wrap_future(future)
        ledger.down = False
        w._drain()

    asyncio.run(run())
    assert spool.entries == 0
    assert {p["pair"] for p in ledger.positions().items} == {"ETHZAR", "SOLZAR"}
    refused = ledger.events(kind="LEDGER_SPOOL_REFUSED").items
    assert len(refused) == 1 and "GHOST" in refused[0]["detail"]["error"]
    # landed unit by unit: a crash now would resume after what is there, not land it twice
    writer(ledger, Spool(tmp_path / "spool.sqlite", capacity=1000))._drain()
    assert len(ledger.positions().items) == 2


def test_a_spool_this_version_cannot_read_stops_the_start_with_a_reason(ledger: Flaky, tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, capacity=10)
    spool._db.execute("INSERT INTO entries (decisions, payload) VALUES (1, ?)", (b"not a pickle",))
    reopened = Spool(path, capacity=10)
    with pytest.raises(LedgerError, match="cannot be read by this version"):
        writer(ledger, reopened).land()
