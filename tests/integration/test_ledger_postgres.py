"""The SQL ledger on PostgreSQL, in a database of its own created and dropped around this module."""

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from functools import partial

import pytest
from sqlalchemy import create_engine, text

from helios_live.ledger import Ledger, LedgerConflict, Outcome, StepRecord
from helios_live.ledger.models import Base
from tests import ledger_support
from tests.ledger_support import (
    HOUR,
    MINUTE,
    T0,
    check,
    closing,
    mode,
    schema_differences,
    snapshot,
    temporary_database,
    traded,
)

pytestmark = pytest.mark.integration

STEPS = (StepRecord("prediction", True, ""), StepRecord("signal", False, "below threshold"))
record = partial(ledger_support.record, steps=STEPS)


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_ledger") as url:
        yield url


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(database_url)
    ledger.migrate()
    yield ledger
    ledger.close()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(Base.metadata.tables)} RESTART IDENTITY"))
    engine.dispose()


def test_migrate_is_idempotent_and_matches_the_models(ledger: Ledger, database_url: str) -> None:
    ledger.migrate()

    assert schema_differences(database_url) == []
    assert ledger.ping() is True


def test_a_prediction_is_stored_once(ledger: Ledger) -> None:
    first = ledger.add_predictions([record(), record(model="m2")])

    again = ledger.add_predictions([record(), record(hour=1)])

    assert None not in first and again[0] is None and again[1] is not None
    (item,) = ledger.predictions(model_version="m1", until=T0 + HOUR).items
    assert item["id"] == first[0] and item["candle_ts"] == T0 and item["candle_ts"].tzinfo == UTC
    assert [step["reason"] for step in item["steps"]] == ["", "below threshold"]
    assert ledger.prediction_counts()["total"] == 3


def test_outcomes_are_filled_once(ledger: Ledger) -> None:
    buy, sell = ledger.add_predictions([record(hour=0, label="BUY"), record(hour=1, label="SELL")])
    assert buy is not None and sell is not None
    due = ledger.due_outcomes("BTCZAR", T0 + 5 * HOUR)

    updated = ledger.fill_outcomes([Outcome(buy, "BUY", 0.03), Outcome(sell, "BUY", 0.01)])
    overwritten = ledger.fill_outcomes([Outcome(buy, "HOLD", 0.0)])

    assert [row[0] for row in due] == [buy]
    assert (updated, overwritten) == (2, 0)
    assert ledger.pending_outcomes("BTCZAR") == []
    assert ledger.prediction_counts() == {"total": 2, "with_outcome": 2, "correct": 1}
    items = {item["id"]: item for item in ledger.predictions().items}
    assert (items[buy]["actual_outcome"], items[buy]["correct"]) == ("BUY", True)
    assert (items[sell]["actual_outcome"], items[sell]["correct"]) == ("BUY", False)


def test_pages_cover_every_row_once_newest_first(ledger: Ledger) -> None:
    ids = ledger.add_predictions([record(hour=h) for h in range(25)])

    pages = [ledger.predictions(pair="BTCZAR", limit=10)]
    while pages[-1].next_cursor is not None:
        pages.append(ledger.predictions(pair="BTCZAR", limit=10, cursor=pages[-1].next_cursor))

    assert [len(page.items) for page in pages] == [10, 10, 5]
    assert [item["id"] for page in pages for item in page.items] == ids[::-1]


def test_events_round_trip(ledger: Ledger) -> None:
    event_id = ledger.record_event("EMERGENCY_STOP", T0, {"reason": "drawdown"}, pair="BTCZAR")

    (item,) = ledger.events(kind="EMERGENCY_STOP").items

    assert item == {
        "id": event_id,
        "at": T0,
        "kind": "EMERGENCY_STOP",
        "pair": "BTCZAR",
        "detail": {"reason": "drawdown"},
    }


def test_trading_round_trip(ledger: Ledger) -> None:
    opened, held = traded(hour=0), traded(pair="ETHZAR", hour=1)
    assert opened.execution is not None and held.execution is not None
    guarded = replace(held, check=replace(check(), metrics={"drawdown": 0.0, "max_correlation": math.nan}))
    ledger.write([opened, guarded], snapshots=[snapshot(T0 + HOUR)])
    ledger.record_mode(mode("LIVE", T0 + HOUR))

    ids = ledger.write([record(hour=2)], [closing(opened.execution)], [snapshot(T0 + 2 * HOUR, equity=10_039.16)])

    assert ids[0] is not None
    assert ledger.mode() == "LIVE"
    assert ledger.open_positions() == [held.execution.position]
    account = ledger.account()
    assert account["closed"] == 1 and account["realised"] == pytest.approx(40 - 0.4 - 0.44)
    assert account["open_entry_fees"] == pytest.approx(0.404)
    assert ledger.latest_snapshot() == snapshot(T0 + 2 * HOUR, equity=10_039.16)
    assert ledger.decided_until("BTCZAR") == T0 + 2 * HOUR
    closed = ledger.positions(status="CLOSED").items
    assert [(p["key"], p["closed_at"]) for p in closed] == [("BTCZAR-0", T0 + HOUR + 10 * MINUTE)]
    assert ledger.position(closed[0]["id"]) == closed[0]
    assert [f["client_order_id"] for f in ledger.fills(pair="BTCZAR").items] == ["BTCZAR-0-C", "BTCZAR-0-O"]
    assert [o["purpose"] for o in ledger.orders(position_key="BTCZAR-0").items] == ["CLOSE", "OPEN"]
    decision = ledger.risk_decisions(pair="ETHZAR", approved=True).items[0]
    assert decision["candle_ts"] == T0 + HOUR and decision["candle_ts"].tzinfo == UTC
    assert decision["check"]["metrics"] == {"drawdown": 0.0, "max_correlation": None}
    assert len(ledger.snapshots(since=T0 + 2 * HOUR).items) == 1


def test_conflicts_roll_back_everything(ledger: Ledger) -> None:
    opened = traded(hour=0, key="same")
    assert opened.execution is not None
    ledger.write([opened])
    ledger.write(closes=[closing(opened.execution)])

    with pytest.raises(LedgerConflict, match="uq_positions_key"):
        ledger.write([record(hour=2), traded(hour=1, key="same")])
    with pytest.raises(LedgerConflict, match="cannot close same"):
        ledger.write([record(hour=3)], [closing(opened.execution)], [snapshot(T0)])

    assert ledger.prediction_counts()["total"] == 1
    assert len(ledger.orders().items) == 2 and ledger.snapshots().items == []
