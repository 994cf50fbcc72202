"""The ledger's trading tables on SQLite: decisions stored with their prediction, atomic closes,
conflicts, recovery reads, the mode and every page."""

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from helios_core.trading.enums import TradingMode
from helios_core.trading.orders import Order
from helios_live.ledger import Ledger, LedgerConflict, LedgerError, ModeRecord, Page
from tests.ledger_support import (
    HOUR,
    MINUTE,
    T0,
    check,
    closing,
    mode,
    opening,
    record,
    risk,
    snapshot,
    traded,
)

NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 -- what the records must refuse


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    yield ledger
    ledger.close()


def counts(ledger: Ledger) -> dict[str, int]:
    pages = {
        "predictions": ledger.predictions,
        "risk_decisions": ledger.risk_decisions,
        "positions": ledger.positions,
        "orders": ledger.orders,
        "fills": ledger.fills,
        "snapshots": ledger.snapshots,
    }
    return {name: len(page(limit=1000).items) for name, page in pages.items()}


def renamed(order: Order, client_order_id: str) -> Order:
    """The same order under another client order id, without its fills."""
    return replace(order, intent=replace(order.intent, client_order_id=client_order_id), fills=())


def walk(page: Callable[..., Page], **filters: Any) -> list[int]:
    """Every id a paged listing yields, two at a time."""
    pages = [page(limit=2, **filters)]
    while pages[-1].next_cursor is not None:
        pages.append(page(limit=2, cursor=pages[-1].next_cursor, **filters))
    return [item["id"] for p in pages for item in p.items]


def test_risk_check_and_trade_are_stored_with_their_prediction(ledger: Ledger) -> None:
    opened = traded(hour=0)
    denied = replace(record(hour=1), risk=risk(approved=False))
    guarded = replace(record(hour=2), risk=risk(), check=check(passed=False))

    ids = ledger.add_predictions([opened, denied, guarded])

    (position,) = ledger.positions().items
    assert position["prediction_id"] == ids[0] and position["key"] == "BTCZAR-0" and position["status"] == "OPEN"
    assert position["opened_at"] == opened.decided_at and position["exit_price"] is None
    (order,) = ledger.orders().items
    assert order["client_order_id"] == "BTCZAR-0-O" and order["position_key"] == "BTCZAR-0"
    (fill,) = ledger.fills().items
    assert (fill["pair"], fill["side"], fill["purpose"], fill["position_key"]) == ("BTCZAR", "BUY", "OPEN", "BTCZAR-0")
    decisions = {item["prediction_id"]: item for item in ledger.risk_decisions().items}
    assert decisions[ids[0]]["check"] == {
        "passed": True,
        "violations": [],
        "metrics": {"drawdown": 0.0, "open_positions": 3.0, "leverage": 1.5},
    }
    assert decisions[ids[1]]["check"] is None and decisions[ids[1]]["approved"] is False
    assert decisions[ids[1]]["reason"] == "confidence 0.400 below 0.55"
    assert decisions[ids[2]]["check"]["violations"] == list(check(passed=False).violations)
    assert decisions[ids[2]]["candle_ts"] == T0 + 2 * HOUR and decisions[ids[2]]["created_at"] == T0 + 3 * HOUR
    assert decisions[ids[0]]["regime"] == "MEDIUM" and decisions[ids[0]]["omega"] == 1e-6


def test_a_duplicate_prediction_stores_none_of_its_children(ledger: Ledger) -> None:
    ledger.add_predictions([traded(hour=0)])
    # The same decision again (a restart re-processing its candle), this time with other children.
    again = replace(traded(hour=0, key="other"), check=check(passed=False))

    ids = ledger.add_predictions([again, traded(hour=1)])

    assert ids[0] is None and ids[1] is not None
    assert [item["key"] for item in ledger.positions().items] == ["BTCZAR-1", "BTCZAR-0"]
    assert counts(ledger) == {
        "predictions": 2,
        "risk_decisions": 2,
        "positions": 2,
        "orders": 2,
        "fills": 2,
        "snapshots": 0,
    }
    assert all(item["check"]["passed"] for item in ledger.risk_decisions().items)


def test_a_close_updates_its_position_and_stores_order_fill_and_snapshot_together(ledger: Ledger) -> None:
    opened = traded(hour=0)
    ledger.write([opened], snapshots=[snapshot(opened.decided_at)])
    assert opened.execution is not None
    closed = closing(opened.execution, price=110.0)
    later = record(hour=1)

    ids = ledger.write([later], [closed], [snapshot(closed.position.closed_at or T0, equity=10_039.16)])

    assert ids[0] is not None
    (position,) = ledger.positions().items
    assert position["status"] == "CLOSED" and position["close_reason"] == "TAKE_PROFIT"
    assert position["exit_price"] == 110.0 and position["closed_at"] == opened.decided_at + 10 * MINUTE
    assert position["realised_pnl"] == pytest.approx(10 * 4 - 0.4 - 0.44)
    assert position["exit_fee"] == pytest.approx(0.44) and position["entry_fee"] == pytest.approx(0.4)
    assert [o["purpose"] for o in ledger.orders(position_key="BTCZAR-0").items] == ["CLOSE", "OPEN"]
    assert [(f["client_order_id"], f["side"]) for f in ledger.fills().items] == [
        ("BTCZAR-0-C", "SELL"),
        ("BTCZAR-0-O", "BUY"),
    ]
    assert [s["equity"] for s in ledger.snapshots().items] == [10_039.16, 10_000.0]


def test_a_position_can_open_and_close_in_one_write(ledger: Ledger) -> None:
    opened = traded(hour=0)
    assert opened.execution is not None

    ledger.write([opened], [closing(opened.execution)])

    assert [item["status"] for item in ledger.positions().items] == ["CLOSED"]
    assert len(ledger.orders().items) == 2 and ledger.open_positions() == []


@pytest.mark.parametrize("already", ["closed", "missing"])
def test_a_close_of_a_position_that_is_not_open_rolls_back_the_whole_write(ledger: Ledger, already: str) -> None:
    opened = traded(hour=0)
    assert opened.execution is not None
    ledger.write([opened])
    first = closing(opened.execution)
    if already == "closed":
        ledger.write(closes=[first])
    else:
        first = closing(opening("nowhere"))
    before = counts(ledger)

    # A fresh order id, so that only the position's state can refuse it.
    close = replace(first, order=renamed(first.order, "x"))

    with pytest.raises(LedgerConflict, match="cannot close .*no such open position"):
        ledger.write([traded(hour=1), record(hour=2)], [close], [snapshot(T0)])

    assert counts(ledger) == before
    assert ledger.decided_until("BTCZAR") == T0


def test_a_close_of_the_same_position_twice_in_one_write_is_refused(ledger: Ledger) -> None:
    opened = traded(hour=0)
    assert opened.execution is not None
    ledger.write([opened])
    close = closing(opened.execution)
    twice = replace(close, order=renamed(close.order, "again"))

    with pytest.raises(LedgerConflict, match="BTCZAR-0"):
        ledger.write(closes=[close, twice])

    assert [item["status"] for item in ledger.positions().items] == ["OPEN"]


def test_a_position_key_stored_twice_is_a_conflict(ledger: Ledger) -> None:
    ledger.add_predictions([traded(hour=0, key="same")])

    with pytest.raises(LedgerConflict, match=r"positions\.key") as raised:
        ledger.add_predictions([record(hour=2), traded(hour=1, key="same")])

    assert "nothing of it was stored" in str(raised.value)
    assert counts(ledger)["predictions"] == 1 and counts(ledger)["positions"] == 1


def test_a_client_order_id_stored_twice_is_a_conflict(ledger: Ledger) -> None:
    ledger.add_predictions([traded(hour=0)])
    reused = traded(hour=1)
    assert reused.execution is not None
    reused = replace(reused, execution=replace(reused.execution, order=renamed(reused.execution.order, "BTCZAR-0-O")))

    with pytest.raises(LedgerConflict, match=r"orders\.client_order_id"):
        ledger.add_predictions([reused])

    assert counts(ledger)["positions"] == 1 and counts(ledger)["predictions"] == 1


def test_unknown_figures_are_stored_as_null(ledger: Ledger) -> None:
    unknown = replace(risk(approved=False), daily_vol=math.nan, vol_adjusted=math.nan, stop_loss_pct=math.nan)
    metrics = {"drawdown": 0.0, "max_correlation": math.nan}
    guarded = replace(record(), risk=unknown, check=replace(check(), metrics=metrics))

    ledger.add_predictions([guarded])

    (item,) = ledger.risk_decisions().items
    assert item["daily_vol"] is None and item["vol_adjusted"] is None and item["stop_loss_pct"] is None
    assert item["kelly_full"] == 0.2
    assert item["check"]["metrics"] == {"drawdown": 0.0, "max_correlation": None}


def test_recovery_reads(ledger: Ledger) -> None:
    assert ledger.open_positions() == [] and ledger.latest_snapshot() is None
    assert ledger.account() == {"realised": 0.0, "open_entry_fees": 0.0, "closed": 0}
    assert ledger.decided_until("BTCZAR") is None
    first, second, third = traded(hour=0), traded(hour=1), traded(pair="ETHZAR", hour=2)
    assert first.execution and second.execution and third.execution
    snapshots = [snapshot(T0 + h * HOUR, equity=10_000.0 + h) for h in (0, 25, 26)]
    ledger.write([third, first, second], snapshots=snapshots)
    ledger.write(closes=[closing(second.execution, price=90.0)])

    positions = ledger.open_positions()
    account = ledger.account()

    assert positions == [first.execution.position, third.execution.position]
    realised = (90.0 - 101.0) * 4 - second.execution.position.entry_fee - 0.36
    assert account["realised"] == pytest.approx(realised) and account["closed"] == 1
    assert account["open_entry_fees"] == pytest.approx(0.4 + 0.408)
    assert ledger.latest_snapshot() == snapshots[2]
    assert ledger.decided_until("BTCZAR") == T0 + HOUR and ledger.decided_until("ETHZAR") == T0 + 2 * HOUR


def test_mode_is_paper_until_changed_and_then_the_latest(ledger: Ledger) -> None:
    assert ledger.mode() == "PAPER"

    first = ledger.record_mode(mode("LIVE", T0))
    second = ledger.record_mode(mode("PAPER", T0 + HOUR, previous="LIVE"))
    third = ledger.record_mode(mode("LIVE", T0 + 2 * HOUR))

    assert first < second < third
    assert ledger.mode() == "LIVE"


def test_position_by_id(ledger: Ledger) -> None:
    ledger.add_predictions([traded(hour=0), traded(hour=1)])
    newest = ledger.positions(limit=1).items[0]

    item = ledger.position(newest["id"])

    assert item == newest and item is not None and item["key"] == "BTCZAR-1"
    assert set(item) >= {"id", "key", "prediction_id", "opened_at", "realised_pnl"}
    assert ledger.position(newest["id"] + 100) is None


def test_position_and_order_pages_filter_and_walk(ledger: Ledger) -> None:
    records = [traded(pair="ETHZAR" if h % 3 == 0 else "BTCZAR", hour=h) for h in range(7)]
    ledger.add_predictions(records)
    trades = {r.execution.position.key: r.execution for r in records if r.execution is not None}
    ledger.write(closes=[closing(trades["BTCZAR-1"]), closing(trades["ETHZAR-3"])])
    positions = ledger.positions(limit=100).items

    assert walk(ledger.positions) == [p["id"] for p in positions] == sorted((p["id"] for p in positions), reverse=True)
    assert [p["key"] for p in ledger.positions(status="CLOSED").items] == ["ETHZAR-3", "BTCZAR-1"]
    assert [p["key"] for p in ledger.positions(status="OPEN", pair="ETHZAR").items] == ["ETHZAR-6", "ETHZAR-0"]
    assert len(walk(ledger.positions, pair="BTCZAR")) == 4
    assert len(walk(ledger.orders)) == 9 and len(walk(ledger.orders, pair="ETHZAR")) == 4
    orders = ledger.orders(position_key="BTCZAR-1").items
    assert [(o["client_order_id"], o["side"], o["mode"]) for o in orders] == [
        ("BTCZAR-1-C", "SELL", "PAPER"),
        ("BTCZAR-1-O", "BUY", "PAPER"),
    ]


def test_fill_pages_filter_and_walk(ledger: Ledger) -> None:
    ledger.add_predictions([traded(pair="ETHZAR" if h % 2 else "BTCZAR", hour=h) for h in range(5)])

    ids = walk(ledger.fills)
    eth = ledger.fills(pair="ETHZAR").items

    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert [f["client_order_id"] for f in eth] == ["ETHZAR-3-O", "ETHZAR-1-O"]
    assert eth[0]["levels"] == 2 and eth[0]["liquidity"] == "TAKER" and eth[0]["filled_at"] == T0 + 4 * HOUR


def test_risk_decision_pages_filter_and_walk(ledger: Ledger) -> None:
    ledger.add_predictions(
        [replace(record(hour=h), risk=risk(approved=h % 2 == 0)) for h in range(5)]
        + [replace(record(pair="ETHZAR"), risk=risk())]
    )

    ids = walk(ledger.risk_decisions)
    denied = ledger.risk_decisions(approved=False).items
    eth = ledger.risk_decisions(pair="ETHZAR", approved=True).items

    assert len(ids) == 6 and ids == sorted(ids, reverse=True)
    assert [d["candle_ts"] for d in denied] == [T0 + 3 * HOUR, T0 + HOUR]
    assert len(walk(ledger.risk_decisions, pair="BTCZAR", approved=True)) == 3
    assert [d["pair"] for d in eth] == ["ETHZAR"]


def test_snapshot_pages_filter_and_walk(ledger: Ledger) -> None:
    ledger.write(snapshots=[snapshot(T0 + h * MINUTE, equity=10_000.0 + h) for h in range(5)])

    ids = walk(ledger.snapshots)
    since = ledger.snapshots(since=T0 + 3 * MINUTE).items

    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert [(s["at"], s["equity"]) for s in since] == [(T0 + 4 * MINUTE, 10_004.0), (T0 + 3 * MINUTE, 10_003.0)]
    assert since[0]["open_positions"] == 1 and since[0]["reason"] == "FILL"


@pytest.mark.parametrize("page", ["positions", "orders", "fills", "risk_decisions", "snapshots"])
def test_every_page_refuses_a_bad_cursor_and_limit(ledger: Ledger, page: str) -> None:
    listing = getattr(ledger, page)

    with pytest.raises(ValueError, match="invalid cursor"):
        listing(cursor="not a cursor")
    with pytest.raises(ValueError, match="limit"):
        listing(limit=0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(opening("k").position, opened_at=NAIVE),
        lambda: replace(opening("k").position, closed_at=NAIVE),
        lambda: replace(opening("k").order.intent, created_at=NAIVE),
        lambda: replace(opening("k").order.fills[0], filled_at=NAIVE),
        lambda: replace(snapshot(T0), at=NAIVE),
        lambda: ModeRecord(TradingMode.LIVE, TradingMode.PAPER, "operator", NAIVE),
    ],
)
def test_records_refuse_naive_datetimes(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build()


def test_reads_refuse_naive_datetimes(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.snapshots(since=NAIVE)


def test_a_missing_schema_and_an_unreachable_database_are_ledger_errors(tmp_path: Path) -> None:
    bare = Ledger(f"sqlite:///{tmp_path / 'bare.db'}")
    unreachable = Ledger("postgresql://nobody@127.0.0.1:1/none")

    with pytest.raises(LedgerError, match="no schema"):
        bare.write(snapshots=[snapshot(T0)])
    with pytest.raises(LedgerError, match="no schema"):
        bare.mode()
    for read in (unreachable.mode, unreachable.open_positions, unreachable.account, unreachable.latest_snapshot):
        with pytest.raises(LedgerError, match="unreachable"):
            read()
    with pytest.raises(LedgerError, match="unreachable"):
        unreachable.write([traded()])
    bare.close()
    unreachable.close()


def test_nothing_to_write_touches_nothing(ledger: Ledger) -> None:
    assert ledger.write() == [] and ledger.add_predictions([]) == []
    assert counts(ledger) == dict.fromkeys(counts(ledger), 0)
