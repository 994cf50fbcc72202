"""Tier 4's audit in the ledger: each decision's LLM record lands with it (context snapshot and
decision row, in the same transaction), reads back filtered and paged, feeds a replay
(`llm_answers`) and a restart's spend, links to the position it opened, survives the spool, and
the migration that adds it goes down and up again; on SQLite, and on PostgreSQL where it runs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from helios_live.ledger import Ledger, LedgerError, PredictionRecord
from helios_live.ledger.models import Base
from helios_live.ledger.records import LlmDecisionRecord, Outcome, Unit
from helios_live.ledger.spool import Spool
from helios_live.ledger.store import MIGRATIONS
from helios_live.ledger.writer import LedgerWriter
from tests.ledger_support import HOUR, MINUTE, T0, record, schema_differences, temporary_database, traded

TABLES = ("market_context_snapshots", "llm_decisions")


def context_json(pair: str = "BTCZAR", price: float = 100.0) -> str:
    return json.dumps({"pair": pair, "market": {"price": price}}, sort_keys=True, separators=(",", ":"))


def answer_json(*reasons: str, decision: str = "APPROVE") -> str:
    body = {
        "confidence": 0.7,
        "decision": decision,
        "leverage": 1.0,
        "reasons": list(reasons),
        "size_multiplier": 1.0,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.04,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def approval(
    *,
    source: str = "llm",
    verdict: str = "APPROVE",
    approver: str = "claude",
    key: str = "k0",
    answer: str | None = None,
    failure: str | None = None,
    cost: float = 0.002,
    hour: int = 0,
    model: str = "claude-sonnet-4-5",
    clamps: tuple[str, ...] = (),
    pair: str = "BTCZAR",
) -> LlmDecisionRecord:
    text_ = context_json(pair, 100.0 + hour)
    return LlmDecisionRecord(
        approver=approver,
        source=source,
        verdict=verdict,
        decided_at=T0 + hour * HOUR + HOUR + MINUTE,
        context=text_,
        context_hash=f"{hour:064x}",
        replay_key=key.ljust(64, "0"),
        prompt_version="v1",
        prompt_hash="ph".ljust(64, "0"),
        model_id=model,
        request_id=None if failure else f"req_{hour}",
        input_tokens=700,
        output_tokens=90,
        cache_creation_tokens=0,
        cache_read_tokens=650,
        latency_ms=1234.5,
        cost_usd=cost,
        answer=answer if answer is not None or failure is not None else answer_json("trend intact", "depth fine"),
        clamps=clamps,
        failure=failure,
    )


def decided(hour: int, pair: str = "BTCZAR", **llm: Any) -> PredictionRecord:
    """A decision of `pair` at `hour` that traded, with its Tier 4 record."""
    return replace(traded(pair=pair, hour=hour), llm=approval(hour=hour, pair=pair, **llm))


def walk(ledger: Ledger, **filters: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = ledger.llm_decisions(cursor=cursor, limit=2, **filters)
        ids += [item["id"] for item in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def alembic(url: str, action: str, revision: str) -> None:
    """`alembic upgrade/downgrade` as `Ledger.migrate` runs it: on a connection handed in."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- on every backend ---------------------------------------------------------------------------


def check_round_trip(ledger: Ledger) -> None:
    clamped = decided(0, clamps=("leverage 3x above the proposal's 2x: kept 2x",), verdict="MODIFY")
    refused = replace(
        record(hour=2), llm=approval(hour=2, verdict="REJECT", answer=answer_json("no", decision="REJECT"))
    )
    ids = ledger.add_predictions([clamped, record(hour=1), refused])  # the second never reached Tier 4
    assert clamped.llm is not None and ids[0] is not None

    rejected, item = ledger.llm_decisions().items
    assert rejected["prediction_id"] == ids[2] and rejected["verdict"] == "REJECT"  # it traded nothing
    detail = ledger.llm_decision(item["id"])

    assert item["prediction_id"] == ids[0] and item["pair"] == "BTCZAR" and item["candle_ts"] == T0
    assert item["decided_at"] == clamped.llm.decided_at and item["decided_at"].tzinfo is not None
    assert item["clamps"] == ["leverage 3x above the proposal's 2x: kept 2x"]
    assert item["answer"] == json.loads(answer_json("trend intact", "depth fine"))
    assert {k: item[k] for k in ("approver", "source", "verdict", "model_id", "request_id", "failure")} == {
        "approver": "claude",
        "source": "llm",
        "verdict": "MODIFY",
        "model_id": "claude-sonnet-4-5",
        "request_id": "req_0",
        "failure": None,
    }
    assert (item["input_tokens"], item["output_tokens"], item["cache_read_tokens"]) == (700, 90, 650)
    assert item["latency_ms"] == 1234.5 and item["cost_usd"] == pytest.approx(0.002)
    assert item["replay_key"] == clamped.llm.replay_key and item["context_hash"] == clamped.llm.context_hash
    assert "context" not in item
    assert detail is not None and detail["context"] == json.loads(clamped.llm.context)
    assert {k: v for k, v in detail.items() if k != "context"} == item
    assert ledger.llm_decision(item["id"] + 100) is None


def check_position_link(ledger: Ledger) -> None:
    rejected = decided(0, verdict="REJECT", answer=answer_json("volatility EXTREME", "thin book", decision="REJECT"))
    failed = decided(1, source="failsafe", verdict="NEURAL_ONLY", failure="timeout: no answer within 8 s")
    ledger.add_predictions([rejected, failed, traded(hour=2)])  # the last had no Tier 4 record

    positions = {p["key"]: p for p in ledger.positions().items}
    decisions = {d["prediction_id"]: d["id"] for d in ledger.llm_decisions().items}

    first, second, plain = positions["BTCZAR-0"], positions["BTCZAR-1"], positions["BTCZAR-2"]
    assert first["llm_decision_id"] == decisions[first["prediction_id"]] and first["llm_verdict"] == "REJECT"
    assert first["explanation"] == "volatility EXTREME; thin book"
    assert second["llm_verdict"] == "NEURAL_ONLY" and second["explanation"] == "timeout: no answer within 8 s"
    assert (plain["llm_decision_id"], plain["llm_verdict"], plain["explanation"]) == (None, None, None)
    assert "llm_answer" not in first and "llm_failure" not in first
    assert ledger.position(first["id"]) == first


def check_a_duplicate_writes_no_llm_rows(ledger: Ledger) -> None:
    first = ledger.add_predictions([decided(0)])
    # The same decision again (a restart re-processing its candle) with another approval, and a new one.
    again = ledger.add_predictions([decided(0, key="other", verdict="REJECT"), decided(1)])

    assert first[0] is not None and again[0] is None and again[1] is not None
    items = ledger.llm_decisions().items
    assert [i["prediction_id"] for i in items] == [again[1], first[0]]
    assert [i["verdict"] for i in items] == ["APPROVE", "APPROVE"]


# --- SQLite -------------------------------------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    ledger = Ledger(url)
    ledger.migrate()
    yield ledger
    ledger.close()


def test_an_llm_record_lands_with_its_decision_and_reads_back_whole(ledger: Ledger) -> None:
    check_round_trip(ledger)


def test_a_duplicate_prediction_writes_no_llm_rows(ledger: Ledger) -> None:
    check_a_duplicate_writes_no_llm_rows(ledger)


def test_each_position_links_to_its_decision_and_explanation(ledger: Ledger) -> None:
    check_position_link(ledger)


def test_a_long_explanation_is_cut_short() -> None:
    from helios_live.ledger.llm import EXPLANATION_CHARS, explanation

    long = explanation(answer_json(*["x" * 300] * 5), None)
    assert long is not None and len(long) == EXPLANATION_CHARS and long.endswith("…")
    assert explanation(answer_json("a", "b"), None) == "a; b"
    assert explanation(None, "timeout: no answer within 8 s") == "timeout: no answer within 8 s"
    assert explanation(json.dumps({"reasons": []}), "why") == "why"
    assert explanation(None, None) is None


def test_filters_and_pages(ledger: Ledger) -> None:
    records = [
        decided(0),
        decided(1, pair="ETHZAR", verdict="REJECT", answer=answer_json("no", decision="REJECT")),
        decided(2, source="rules", approver="rule_based", model="rules-v1"),
        decided(3, source="failsafe", verdict="REJECT", failure="http_529: overloaded"),
        decided(4, source="recorded", approver="recorded"),
        decided(5, verdict="MODIFY"),
    ]
    ledger.add_predictions(records)
    every = [i["id"] for i in ledger.llm_decisions().items]

    assert walk(ledger) == every == sorted(every, reverse=True) and len(every) == 6

    def candles(**filters: Any) -> list[int]:
        return [int((i["candle_ts"] - T0) / HOUR) for i in ledger.llm_decisions(**filters).items]

    assert candles(pair="ETHZAR") == [1]
    assert candles(verdict="REJECT") == [3, 1]
    assert candles(source="llm") == [5, 1, 0]
    assert candles(approver="rule_based") == [2]
    assert candles(failed=True) == [3]
    assert candles(failed=False) == [5, 4, 2, 1, 0]
    assert candles(pair="BTCZAR", source="llm", verdict="APPROVE") == [0]
    assert len(walk(ledger, failed=False)) == 5
    assert ledger.llm_decisions(pair="XRPZAR").items == []
    with pytest.raises(ValueError, match="invalid cursor"):
        ledger.llm_decisions(cursor="bogus")
    with pytest.raises(ValueError, match="limit"):
        ledger.llm_decisions(limit=0)


def test_llm_answers_are_the_latest_answer_per_key_of_a_model(ledger: Ledger) -> None:
    ledger.add_predictions(
        [
            decided(0, key="a", answer=answer_json("first")),
            decided(1, key="b", answer=answer_json("only b")),
            decided(2, key="a", answer=answer_json("second")),  # the same context answered again
            decided(3, key="c", source="rules", approver="rule_based"),  # not a model's answer
            decided(4, key="d", source="failsafe", verdict="REJECT", failure="timeout: no answer within 8 s"),
            decided(5, key="e", source="recorded", approver="recorded"),  # a replay's: not a source
            decided(6, key="f", model="claude-haiku-4-5", answer=answer_json("haiku")),
        ]
    )

    answers = ledger.llm_answers("claude-sonnet-4-5")
    every = ledger.llm_answers()

    assert set(answers) == {"a".ljust(64, "0"), "b".ljust(64, "0")}
    assert json.loads(answers["a".ljust(64, "0")])["reasons"] == ["second"]
    assert set(every) == {*answers, "f".ljust(64, "0")}
    assert ledger.llm_answers("no-such-model") == {}


def test_llm_spend_sums_the_cost_since_a_time(ledger: Ledger) -> None:
    assert ledger.llm_spend(T0) == 0.0
    ledger.add_predictions([decided(h, cost=0.01 * (h + 1)) for h in range(4)])

    assert ledger.llm_spend(T0) == pytest.approx(0.1)
    # hour h is decided at T0 + (h + 1) h + 1 min: since T0 + 3 h keeps hours 2 and 3
    assert ledger.llm_spend(T0 + 3 * HOUR) == pytest.approx(0.07)
    assert ledger.llm_spend(T0 + 10 * HOUR) == 0.0
    with pytest.raises(ValueError, match="since"):
        ledger.llm_spend(T0.replace(tzinfo=None))


def test_a_refused_write_stores_no_llm_rows(ledger: Ledger) -> None:
    from helios_live.ledger import LedgerConflict

    ledger.add_predictions([decided(0)])
    with pytest.raises(LedgerConflict):  # the same position key again: the whole write rolls back
        ledger.add_predictions([decided(1), replace(decided(2), execution=traded(hour=0).execution)])

    assert len(ledger.llm_decisions().items) == 1


def test_deleting_a_prediction_deletes_its_llm_rows(ledger: Ledger, tmp_path: Path) -> None:
    (kept, pruned) = ledger.add_predictions([decided(0), decided(1)])

    db = sqlite3.connect(tmp_path / "ledger.db")
    db.execute("PRAGMA foreign_keys=ON")
    with db:
        db.execute("DELETE FROM predictions WHERE id = ?", (pruned,))
    counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]  # noqa: S608
    db.close()

    assert counts == [1, 1]
    assert [i["prediction_id"] for i in ledger.llm_decisions().items] == [kept]


def test_the_migration_goes_down_and_up_again(url: str) -> None:
    ledger = Ledger(url)
    ledger.migrate()
    ledger.add_predictions([decided(0)])

    alembic(url, "downgrade", "0002")
    down = tables(url)
    alembic(url, "upgrade", "head")

    assert not set(TABLES) & down and {"predictions", "positions"} <= down
    assert set(TABLES) <= tables(url) and schema_differences(url) == []
    assert ledger.llm_decisions().items == [] and ledger.prediction_counts()["total"] == 1
    ledger.close()


def test_without_the_migration_the_reads_say_run_migrate(url: str) -> None:
    ledger = Ledger(url)
    ledger.migrate()
    alembic(url, "downgrade", "0002")

    with pytest.raises(LedgerError, match="run migrate"):
        ledger.llm_decisions()
    ledger.close()


# --- the spool ----------------------------------------------------------------------------------


class Flaky(Ledger):
    """A ledger whose database can be cut off."""

    down = False

    def commit(self, units: Sequence[Unit], outcomes: Sequence[Outcome] = (), events: Sequence[Any] = ()) -> Any:
        if self.down:
            raise LedgerError(f"ledger {self.url} is unreachable: connection refused")
        return super().commit(units, outcomes, events)

    def spooled_through(self, spool: str) -> tuple[int, int]:
        if self.down:
            raise LedgerError(f"ledger {self.url} is unreachable: connection refused")
        return super().spooled_through(spool)


def test_an_llm_record_survives_the_spool_and_lands(tmp_path: Path) -> None:
    ledger = Flaky(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    path = tmp_path / "spool.sqlite"
    spooled = decided(0, clamps=("stop 5% above the proposal's 3%: kept 3%",), verdict="MODIFY")
    failed = decided(1, source="failsafe", verdict="REJECT", failure="circuit_open: 3 failures in a row")

    async def outage() -> None:
        w = LedgerWriter(ledger, ThreadPoolExecutor(1), lambda: 1_000.0, spool=Spool(path, 1000), retry_s=30.0)
        ledger.down = True
        for decision in (spooled, failed):
            assert (await asyncio.wrap_future(w.submit(decision))).spooled

    asyncio.run(outage())
    # The next process reads the entries back from the file: the records as they were written.
    reopened = Spool(path, 1000)
    landed = [p for _, entry in reopened.read(0) for unit in entry.units for p in unit.predictions]
    assert [p.llm for p in landed] == [spooled.llm, failed.llm]
    ledger.down = False
    LedgerWriter(ledger, ThreadPoolExecutor(1), lambda: 1_000.0, spool=reopened, retry_s=30.0).land()

    items = ledger.llm_decisions().items
    assert reopened.entries == 0
    assert [(i["verdict"], i["clamps"], i["failure"]) for i in items] == [
        ("REJECT", [], "circuit_open: 3 failures in a row"),
        ("MODIFY", ["stop 5% above the proposal's 3%: kept 3%"], None),
    ]
    detail = ledger.llm_decision(items[1]["id"])
    assert detail is not None and spooled.llm is not None and detail["context"] == json.loads(spooled.llm.context)
    assert {p["llm_verdict"] for p in ledger.positions().items} == {"MODIFY", "REJECT"}
    ledger.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_llm") as database:
        yield database


@pytest.fixture
def pg_ledger(pg_url: str) -> Iterator[Ledger]:
    ledger = Ledger(pg_url)
    ledger.migrate()
    yield ledger
    ledger.close()
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(Base.metadata.tables)} RESTART IDENTITY"))
    engine.dispose()


@pytest.mark.integration
def test_round_trip_on_postgresql(pg_ledger: Ledger) -> None:
    check_round_trip(pg_ledger)


@pytest.mark.integration
def test_duplicates_and_position_links_on_postgresql(pg_ledger: Ledger) -> None:
    check_a_duplicate_writes_no_llm_rows(pg_ledger)
    pg_ledger.add_predictions([decided(5, source="failsafe", verdict="REJECT", failure="budget: day ceiling")])
    (position,) = [p for p in pg_ledger.positions().items if p["key"] == "BTCZAR-5"]
    assert position["llm_verdict"] == "REJECT" and position["explanation"] == "budget: day ceiling"


@pytest.mark.integration
def test_many_decisions_in_one_flush_on_postgresql(pg_ledger: Ledger) -> None:
    """One insert per table for the whole flush: each decision still gets its own context."""
    units = [Unit((decided(h, pair=pair, key=f"{pair}-{h}-"),)) for h in range(30) for pair in ("BTCZAR", "ETHZAR")]
    pg_ledger.write_units(units)

    items = pg_ledger.llm_decisions(limit=1000).items
    assert len(items) == 60 and len({i["context_id"] for i in items}) == 60
    for item in items[:5]:
        detail = pg_ledger.llm_decision(item["id"])
        assert detail is not None and detail["context"]["pair"] == item["pair"]
    assert pg_ledger.llm_spend(T0) == pytest.approx(60 * 0.002)
    assert len(pg_ledger.llm_answers("claude-sonnet-4-5")) == 60


@pytest.mark.integration
def test_the_migration_goes_down_and_up_again_on_postgresql(pg_ledger: Ledger, pg_url: str) -> None:
    pg_ledger.add_predictions([decided(0)])

    alembic(pg_url, "downgrade", "0002")
    down = tables(pg_url)
    alembic(pg_url, "upgrade", "head")

    assert not set(TABLES) & down and "predictions" in down
    assert schema_differences(pg_url) == [] and pg_ledger.llm_decisions().items == []
