"""The order journal in the ledger: an order's intent lands before its request is sent, each
transition after it, a terminal outcome is never undone by a late duplicate, recovery reads back
the orders not finished with their opening intact; and the record of reconciliation runs, open
until an operator acknowledges them. On SQLite (tests/integration has them on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from helios_live.ledger import Ledger, LedgerConflict, LedgerError
from helios_live.ledger.orders import JournalEntry, OrderIntentRecord, OrderTransitionRecord
from helios_live.ledger.store import UnknownOrder
from tests.ledger_support import MINUTE, T0, schema_differences
from tests.unit.live.test_ledger_llm import alembic, tables

OPENING = {
    "margin": 200.0,
    "leverage": 2.0,
    "stop_loss_pct": 0.03,
    "take_profit_pct": 0.06,
    "decision": {"pair": "BTCZAR", "candle_ts": "2026-01-01T00:00:00+00:00", "model_version": "m1"},
}
TABLES = ("order_journal", "order_transitions", "reconciliations")


def intent(
    cid: str = "hx-1",
    *,
    pair: str = "BTCZAR",
    purpose: str = "OPEN",
    mode: str = "LIVE",
    minute: int = 0,
    price: float | None = None,
) -> OrderIntentRecord:
    body = {"pair": pair, "side": "BUY", "baseAmount": "0.0004", "customerOrderId": cid}
    return OrderIntentRecord(
        client_order_id=cid,
        position_key=f"{pair}-0",
        pair=pair,
        side="BUY",
        purpose=purpose,
        mode=mode,
        order_type="MARKET" if price is None else "LIMIT",
        quantity=0.0004,
        price=price,
        time_in_force=None if price is None else "GTC",
        request={"verb": "POST", "path": "/v1/orders/market", "body": body},
        opening=OPENING if purpose == "OPEN" else None,
        reason="signal BUY 0.61" if purpose == "OPEN" else "TAKE_PROFIT",
        created_at=T0 + minute * MINUTE,
    )


def step(cid: str, status: str, minute: int, **fields: Any) -> OrderTransitionRecord:
    return OrderTransitionRecord(cid, status, T0 + minute * MINUTE, **fields)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    ledger = Ledger(url)
    ledger.migrate()
    yield ledger
    ledger.close()


# --- on every backend ---------------------------------------------------------------------------


def check_round_trip(ledger: Ledger) -> None:
    ledger.record_intent(intent())
    assert ledger.journal_entry("hx-1") == JournalEntry(intent(), "NEW", None, 0.0, None, 0.0, T0)

    ledger.record_transitions([step("hx-1", "UNKNOWN", 1, detail="timeout after 5 s")])
    ledger.record_transitions(
        [
            step("hx-1", "ACCEPTED", 2, venue_order_id="v-9"),
            step("hx-1", "PARTIALLY_FILLED", 3, filled_quantity=0.0001, average_price=1_200_000.0, fee=0.12),
            step("hx-1", "FILLED", 4, filled_quantity=0.0004, average_price=1_200_500.0, fee=0.48),
        ]
    )

    entry = ledger.journal_entry("hx-1")
    assert entry == JournalEntry(intent(), "FILLED", "v-9", 0.0004, 1_200_500.0, 0.48, T0 + 4 * MINUTE)
    assert entry.intent.created_at.tzinfo is not None and entry.intent.opening == OPENING
    history = ledger.order_transitions("hx-1")
    assert [t["status"] for t in history] == ["NEW", "UNKNOWN", "ACCEPTED", "PARTIALLY_FILLED", "FILLED"]
    assert [t["at"] for t in history] == [T0 + m * MINUTE for m in range(5)]
    assert history[1]["detail"] == "timeout after 5 s" and history[2]["venue_order_id"] == "v-9"
    assert ledger.journal_entry("nope") is None and ledger.order_transitions("nope") == []


def check_refusals(ledger: Ledger) -> None:
    ledger.record_intent(intent())

    with pytest.raises(LedgerConflict, match="refused the write"):
        ledger.record_intent(replace(intent(), reason="again"))
    with pytest.raises(UnknownOrder, match="'hx-ghost'"):
        ledger.record_transitions([step("hx-1", "ACCEPTED", 1), step("hx-ghost", "FILLED", 2)])

    # Nothing of either refused call landed.
    assert [t["status"] for t in ledger.order_transitions("hx-1")] == ["NEW"]
    entry = ledger.journal_entry("hx-1")
    assert entry is not None and entry.status == "NEW" and entry.intent.reason == "signal BUY 0.61"


def check_terminal_stands(ledger: Ledger) -> None:
    ledger.record_intent(intent())
    filled = step("hx-1", "FILLED", 2, venue_order_id="v-1", filled_quantity=0.0004, average_price=100.0, fee=0.04)
    ledger.record_transitions([step("hx-1", "ACCEPTED", 1, venue_order_id="v-1"), filled])

    # A late duplicate: the websocket's stale partial fill, then a cancel after the fill.
    ledger.record_transitions([step("hx-1", "PARTIALLY_FILLED", 3, filled_quantity=0.0001, average_price=99.0)])
    ledger.record_transitions([step("hx-1", "CANCELLED", 4)])

    entry = ledger.journal_entry("hx-1")
    assert entry == JournalEntry(intent(), "FILLED", "v-1", 0.0004, 100.0, 0.04, T0 + 2 * MINUTE)
    statuses = [t["status"] for t in ledger.order_transitions("hx-1")]
    assert statuses == ["NEW", "ACCEPTED", "FILLED", "PARTIALLY_FILLED", "CANCELLED"]


def check_unfinished(ledger: Ledger) -> None:
    ledger.record_intent(intent("hx-a", minute=3))
    ledger.record_intent(intent("hx-b", minute=1, purpose="CLOSE"))
    ledger.record_intent(intent("hx-c", minute=2))
    ledger.record_intent(intent("hx-d", minute=0, mode="PAPER", pair="ETHZAR", price=40_000.0))
    ledger.record_intent(intent("hx-e", minute=4))
    ledger.record_transitions(
        [
            step("hx-a", "UNKNOWN", 5),
            step("hx-c", "PARTIALLY_FILLED", 5, venue_order_id="v-c", filled_quantity=0.0002, average_price=10.0),
            step("hx-e", "FAILED", 5, detail="insufficient balance"),
        ]
    )

    live = ledger.unfinished_orders("LIVE")
    every = ledger.unfinished_orders()

    assert [e.intent.client_order_id for e in live] == ["hx-b", "hx-c", "hx-a"]
    assert [e.intent.client_order_id for e in every] == ["hx-d", "hx-b", "hx-c", "hx-a"]
    b, c, a = live
    assert (a.status, b.status, c.status) == ("UNKNOWN", "NEW", "PARTIALLY_FILLED")
    assert a.intent == intent("hx-a", minute=3) and a.intent.opening == OPENING and b.intent.opening is None
    assert (c.venue_order_id, c.filled_quantity, c.average_price) == ("v-c", 0.0002, 10.0)
    assert every[0].intent.price == 40_000.0 and every[0].intent.time_in_force == "GTC"


def check_reconciliations(ledger: Ledger) -> None:
    assert ledger.open_reconciliation() is None
    first = ledger.record_reconciliation(T0, [])
    assert ledger.open_reconciliation() is None

    mismatch = {"kind": "balance", "pair": "BTCZAR", "detail": "exchange 0.001 BTC, ledger 0.0", "exchange": 0.001}
    second = ledger.record_reconciliation(T0 + MINUTE, [mismatch])

    opened = ledger.open_reconciliation()
    assert opened is not None and opened["id"] == second and opened["ok"] is False
    assert opened["mismatches"] == [mismatch] and opened["acknowledged_at"] is None and opened["at"] == T0 + MINUTE

    assert ledger.acknowledge_reconciliation(second, "ops", T0 + 2 * MINUTE, "manual deposit") is True
    assert ledger.acknowledge_reconciliation(second, "ops", T0 + 3 * MINUTE, "again") is False
    assert ledger.acknowledge_reconciliation(second + 100, "ops", T0 + 3 * MINUTE, "") is False
    assert ledger.acknowledge_reconciliation(2**63, "ops", T0 + 3 * MINUTE, "") is False
    assert ledger.open_reconciliation() is None

    third = ledger.record_reconciliation(T0 + 4 * MINUTE, [mismatch, {"kind": "open_order", "pair": "BTCZAR"}])
    assert (ledger.open_reconciliation() or {}).get("id") == third
    ledger.record_reconciliation(T0 + 5 * MINUTE, [])
    assert ledger.open_reconciliation() is None  # only the latest run counts

    items = ledger.reconciliations().items
    assert [i["id"] for i in items] == [third + 1, third, second, first]
    acknowledged = items[2]
    assert (acknowledged["acknowledged_by"], acknowledged["note"]) == ("ops", "manual deposit")
    assert acknowledged["acknowledged_at"] == T0 + 2 * MINUTE and items[3]["ok"] is True


def check_pages(ledger: Ledger) -> None:
    for i in range(7):
        ledger.record_intent(intent(f"hx-{i}", minute=i, pair="BTCZAR" if i % 2 else "ETHZAR"))
    ledger.record_transitions([step("hx-3", "FILLED", 9, filled_quantity=0.0004)])

    pages = [ledger.order_journal(limit=3)]
    while pages[-1].next_cursor is not None:
        pages.append(ledger.order_journal(limit=3, cursor=pages[-1].next_cursor))

    ids = [item["client_order_id"] for page in pages for item in page.items]
    assert [len(page.items) for page in pages] == [3, 3, 1] and ids == [f"hx-{i}" for i in range(6, -1, -1)]
    assert [i["client_order_id"] for i in ledger.order_journal(pair="BTCZAR").items] == ["hx-5", "hx-3", "hx-1"]
    (filled,) = ledger.order_journal(status="FILLED").items
    assert filled["client_order_id"] == "hx-3" and filled["request"]["body"]["customerOrderId"] == "hx-3"
    assert filled["opening"] == OPENING and filled["updated_at"] == T0 + 9 * MINUTE
    with pytest.raises(ValueError, match="invalid cursor"):
        ledger.order_journal(cursor="bogus")
    with pytest.raises(ValueError, match="limit"):
        ledger.reconciliations(limit=0)


CHECKS = (check_round_trip, check_refusals, check_terminal_stands, check_unfinished, check_reconciliations, check_pages)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_on_sqlite(ledger: Ledger, check: Any) -> None:
    check(ledger)


# --- the records --------------------------------------------------------------------------------


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 -- the point of the test

    with pytest.raises(ValueError, match="timezone-aware"):
        replace(intent(), created_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        OrderTransitionRecord("hx-1", "FILLED", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record_reconciliation(naive, [])
    first = ledger.record_reconciliation(T0, [{"kind": "balance"}])
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.acknowledge_reconciliation(first, "ops", naive, "")


@pytest.mark.parametrize(
    "change",
    [
        {"side": "LONG"},
        {"purpose": "HEDGE"},
        {"mode": "DEMO"},
        {"order_type": "STOP"},
        {"quantity": 0.0},
        {"quantity": float("nan")},
        {"order_type": "LIMIT", "price": None},
        {"price": -1.0},
        {"client_order_id": ""},
        {"request": {"verb": "POST", "path": "/v1/orders", "headers": {"X-VALR-API-KEY": "k"}}},
        {"opening": {"margin": float("nan")}},
        {"opening": {"decision": {"candle_ts": T0}}},  # a datetime, not its ISO string
    ],
)
def test_an_intent_that_is_no_order_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(intent(), **change)


def test_a_transition_that_is_no_step_is_refused() -> None:
    for fields in ({"status": "DONE"}, {"filled_quantity": -1.0}, {"average_price": 0.0}, {"fee": float("inf")}):
        with pytest.raises(ValueError):
            replace(step("hx-1", "FILLED", 1), **fields)
    assert step("hx-1", "FILLED", 1, fee=-0.01).fee == -0.01  # a maker rebate


def test_a_mismatch_needs_a_kind(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="kind"):
        ledger.record_reconciliation(T0, [{"pair": "BTCZAR"}])
    with pytest.raises(ValueError, match="JSON"):
        ledger.record_reconciliation(T0, [{"kind": "balance", "at": T0}])
    assert ledger.reconciliations().items == []


def test_a_stale_update_keeps_the_larger_fill(ledger: Ledger) -> None:
    """Cumulative figures only grow: an older partial fill arriving late, or an UNKNOWN the
    client wrote knowing nothing, does not take the fill back."""
    ledger.record_intent(intent())
    ledger.record_transitions(
        [
            step("hx-1", "PARTIALLY_FILLED", 2, venue_order_id="v-1", filled_quantity=0.0003, average_price=101.0),
            step("hx-1", "PARTIALLY_FILLED", 1, filled_quantity=0.0001, average_price=100.0, fee=0.01),
            step("hx-1", "UNKNOWN", 3, detail="stream dropped"),
        ]
    )

    entry = ledger.journal_entry("hx-1")
    assert entry is not None and entry.status == "UNKNOWN" and entry.venue_order_id == "v-1"
    assert (entry.filled_quantity, entry.average_price) == (0.0003, 101.0)


# --- the migration ------------------------------------------------------------------------------


def test_the_migration_goes_down_and_up_again(url: str) -> None:
    ledger = Ledger(url)
    ledger.migrate()
    ledger.record_intent(intent())

    alembic(url, "downgrade", "0003")
    down = tables(url)
    alembic(url, "upgrade", "head")

    assert not set(TABLES) & down and {"llm_decisions", "orders", "positions"} <= down
    assert set(TABLES) <= tables(url) and schema_differences(url) == []
    assert ledger.journal_entry("hx-1") is None and ledger.unfinished_orders() == []
    ledger.close()


def test_without_the_migration_the_journal_says_run_migrate(url: str) -> None:
    ledger = Ledger(url)
    ledger.migrate()
    alembic(url, "downgrade", "0003")

    with pytest.raises(LedgerError, match="run migrate"):
        ledger.record_intent(intent())
    with pytest.raises(LedgerError, match="run migrate"):
        ledger.unfinished_orders()
    ledger.close()
