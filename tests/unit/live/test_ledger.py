"""The SQL ledger on SQLite: schema, idempotent writes, outcome scoring and cursor pagination."""

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from helios_live.ledger import Ledger, LedgerError, Outcome, StepRecord
from tests.ledger_support import HOUR, T0, record, schema_differences


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'ledger.db'}"


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    ledger = Ledger(url)
    ledger.migrate()
    yield ledger
    ledger.close()


def test_migrate_is_idempotent_and_matches_the_models(url: str, tmp_path: Path) -> None:
    ledger = Ledger(url)

    ledger.migrate()
    ledger.migrate()

    assert schema_differences(url) == []
    journal = sqlite3.connect(tmp_path / "nested" / "ledger.db").execute("PRAGMA journal_mode").fetchone()
    assert journal == ("wal",)
    ledger.close()


def test_predictions_round_trip_with_their_steps(ledger: Ledger) -> None:
    steps = (StepRecord("prediction", True, ""), StepRecord("signal", True, ""), StepRecord("approval", False, "limit"))
    stored = replace(record(), latency_ms=12.5, steps=steps)

    ids = ledger.add_predictions([stored])

    (item,) = ledger.predictions().items
    assert item["id"] == ids[0]
    assert item["candle_ts"] == stored.candle_ts and item["outcome_due"] == stored.outcome_due
    assert item["probabilities"] == {"BUY": 0.6, "SELL": 0.3, "HOLD": 0.1}
    assert item["latency_ms"] == 12.5 and item["actual_outcome"] is None and item["correct"] is None
    assert item["steps"] == [
        {"step": "prediction", "approved": True, "reason": ""},
        {"step": "signal", "approved": True, "reason": ""},
        {"step": "approval", "approved": False, "reason": "limit"},
    ]


def test_a_prediction_is_stored_once(ledger: Ledger) -> None:
    first = ledger.add_predictions([record(), record(model="m2")])

    again = ledger.add_predictions([record(), record(hour=1)])

    assert first[0] is not None and first[1] is not None
    assert again[0] is None and again[1] is not None
    assert ledger.prediction_counts()["total"] == 3


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 -- the point of the test

    with pytest.raises(ValueError, match="timezone-aware"):
        replace(record(), candle_ts=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.due_outcomes("BTCZAR", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record_event("START", naive)


def test_datetimes_come_back_aware_utc(ledger: Ledger) -> None:
    johannesburg = timezone(timedelta(hours=2))
    local = replace(record(), candle_ts=T0.astimezone(johannesburg))

    ledger.add_predictions([local])

    candle_ts = ledger.predictions().items[0]["candle_ts"]
    assert candle_ts == T0 and candle_ts.tzinfo == UTC


def test_due_and_pending_outcomes(ledger: Ledger) -> None:
    ids = ledger.add_predictions([record(hour=h) for h in range(3)] + [record(pair="ETHZAR")])

    due = ledger.due_outcomes("BTCZAR", T0 + 6 * HOUR)
    pending = ledger.pending_outcomes("BTCZAR")

    assert due == [(ids[0], T0, 100.0, T0 + 5 * HOUR), (ids[1], T0 + HOUR, 101.0, T0 + 6 * HOUR)]
    assert [row[0] for row in pending] == ids[:3]


def test_fill_outcomes_scores_once_and_never_overwrites(ledger: Ledger) -> None:
    buy, sell = ledger.add_predictions([record(hour=0, label="BUY"), record(hour=1, label="SELL")])
    assert buy is not None and sell is not None

    updated = ledger.fill_outcomes([Outcome(buy, "BUY", 0.02), Outcome(sell, "HOLD", 0.001)])
    overwritten = ledger.fill_outcomes([Outcome(buy, "SELL", -0.5)])

    assert (updated, overwritten) == (2, 0)
    items = {item["id"]: item for item in ledger.predictions().items}
    assert (items[buy]["actual_outcome"], items[buy]["outcome_return"], items[buy]["correct"]) == ("BUY", 0.02, True)
    assert (items[sell]["actual_outcome"], items[sell]["correct"]) == ("HOLD", False)
    assert ledger.pending_outcomes("BTCZAR") == []
    assert ledger.prediction_counts() == {"total": 2, "with_outcome": 2, "correct": 1}


def test_pages_cover_every_row_once_newest_first(ledger: Ledger) -> None:
    ids = ledger.add_predictions([record(hour=h) for h in range(25)])

    pages = [ledger.predictions(limit=10)]
    while pages[-1].next_cursor is not None:
        pages.append(ledger.predictions(limit=10, cursor=pages[-1].next_cursor))

    assert [len(page.items) for page in pages] == [10, 10, 5]
    assert None not in ids
    assert [item["id"] for page in pages for item in page.items] == ids[::-1]


def test_prediction_filters(ledger: Ledger) -> None:
    ledger.add_predictions(
        [record(hour=h, label="BUY" if h % 2 else "HOLD") for h in range(6)] + [record(pair="ETHZAR", model="m2")]
    )

    by_pair = ledger.predictions(pair="ETHZAR").items
    by_model = ledger.predictions(model_version="m2").items
    buys = ledger.predictions(pair="BTCZAR", prediction="BUY").items
    window = ledger.predictions(pair="BTCZAR", since=T0 + 2 * HOUR, until=T0 + 4 * HOUR).items

    assert [item["pair"] for item in by_pair] == ["ETHZAR"] and by_model == by_pair
    assert [item["candle_ts"] for item in buys] == [T0 + 5 * HOUR, T0 + 3 * HOUR, T0 + HOUR]
    assert [item["candle_ts"] for item in window] == [T0 + 3 * HOUR, T0 + 2 * HOUR]


@pytest.mark.parametrize("cursor", ["not a cursor", "MA==", "LTE=", "", "Mg"])
def test_a_cursor_we_did_not_issue_is_refused(ledger: Ledger, cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        ledger.predictions(cursor=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_out_of_range_is_refused(ledger: Ledger, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        ledger.events(limit=limit)


def test_events_round_trip_and_page(ledger: Ledger) -> None:
    first = ledger.record_event("START", T0)
    ledger.record_event("EMERGENCY_STOP", T0 + HOUR, {"reason": "drawdown", "by": ["api"]}, pair="BTCZAR")
    last = ledger.record_event("START", T0 + 2 * HOUR, {"n": 2})

    page = ledger.events(kind="START", limit=1)
    rest = ledger.events(kind="START", limit=1, cursor=page.next_cursor)
    stop = ledger.events(kind="EMERGENCY_STOP").items[0]

    assert page.items == [{"id": last, "at": T0 + 2 * HOUR, "kind": "START", "pair": None, "detail": {"n": 2}}]
    assert [item["id"] for item in rest.items] == [first] and rest.items[0]["detail"] == {}
    assert rest.next_cursor is None
    assert stop["pair"] == "BTCZAR" and stop["detail"] == {"reason": "drawdown", "by": ["api"]}


def test_ping_and_a_missing_schema(url: str) -> None:
    ledger = Ledger(url)

    assert ledger.ping() is True
    with pytest.raises(LedgerError, match="no schema"):
        ledger.add_predictions([record()])
    ledger.close()


def test_an_unreachable_database_is_a_ledger_error_without_its_password() -> None:
    ledger = Ledger("postgresql://nobody:hunter2@127.0.0.1:1/none")

    assert ledger.ping() is False
    with pytest.raises(LedgerError, match="unreachable") as raised:
        ledger.migrate()
    assert "127.0.0.1:1" in str(raised.value) and "hunter2" not in str(raised.value)
    ledger.close()
