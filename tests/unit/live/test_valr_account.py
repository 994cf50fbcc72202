"""The account stream's messages, parsed, and reconciliation's mismatches."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from helios_core.trading.enums import PositionSide, PositionStatus
from helios_core.trading.position import Position
from helios_live.execution.reconcile import mismatches
from helios_live.venues.valr import account
from helios_live.venues.valr.pairs import PairRules
from helios_live.venues.valr.trading import Balance

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
TRADE = {
    "id": "t1", "orderId": "o1", "customerOrderId": "k-O", "currencyPair": "BTCZAR", "side": "buy",
    "price": "1200000", "quantity": "0.001", "fee": "0.0000035", "feeCurrency": "BTC",
    "tradedAt": "2026-12-03T11:59:59.000Z",
}  # fmt: skip


def test_a_trade_parses() -> None:
    update = account.parse(json.dumps({"type": "NEW_ACCOUNT_TRADE", "data": TRADE}), NOW)
    assert isinstance(update, account.AccountTrade)
    assert (update.side, update.price, update.quantity, update.fee_currency) == ("BUY", 1_200_000, 0.001, "BTC")
    assert update.at.tzinfo is not None


def test_a_status_parses_with_its_executed_quantity() -> None:
    body = {
        "orderId": "o1", "customerOrderId": "k-O", "currencyPair": "BTCZAR", "orderStatusType": "Partially Filled",
        "originalQuantity": "0.002", "remainingQuantity": "0.0005", "orderUpdatedAt": "2026-12-03T12:00:00Z",
    }  # fmt: skip
    update = account.parse(json.dumps({"type": "ORDER_STATUS_UPDATE", "data": body}), NOW)
    assert isinstance(update, account.OrderStatus)
    assert update.status == "PARTIALLY_FILLED" and update.executed == pytest.approx(0.0015)
    failed = account.parse(json.dumps({"type": "FAILED_ORDER", "data": {"orderId": "o2", "failedReason": "x"}}), NOW)
    assert isinstance(failed, account.OrderStatus) and failed.status == "FAILED" and failed.at == NOW


@pytest.mark.parametrize(
    "raw",
    [
        b"\x8b\x00not json",
        "[]",
        '{"type":"NEW_ACCOUNT_TRADE","data":[]}',
        json.dumps({"type": "NEW_ACCOUNT_TRADE", "data": TRADE | {"price": "-1"}}),
        json.dumps({"type": "NEW_ACCOUNT_TRADE", "data": TRADE | {"price": "nan"}}),
        json.dumps({"type": "NEW_ACCOUNT_TRADE", "data": TRADE | {"side": "both"}}),
        json.dumps({"type": "NEW_ACCOUNT_TRADE", "data": TRADE | {"tradedAt": "2026-12-03T11:59:59"}}),
        json.dumps({"type": "ORDER_STATUS_UPDATE", "data": {"orderId": "o1", "orderStatusType": "Maybe"}}),
        json.dumps({"type": "BALANCE_UPDATE", "data": {"currency": {"symbol": "ZAR"}, "available": True}}),
        json.dumps({"type": "OPEN_ORDERS_UPDATE", "data": {"orderId": "o1"}}),
    ],
)
def test_malformed_messages_are_named_never_raised(raw: str | bytes) -> None:
    assert isinstance(account.parse(raw, NOW), account.Malformed)


def test_control_and_unknown_events_are_not_errors() -> None:
    assert account.parse('{"type":"AUTHENTICATED"}', NOW) == account.Control("AUTHENTICATED")
    assert account.parse('{"type":"NEW_ACCOUNT_HISTORY_RECORD","data":{}}', NOW) == account.Control(
        "NEW_ACCOUNT_HISTORY_RECORD"
    )


RULES = {
    "BTCZAR": PairRules.parse(
        {
            "symbol": "BTCZAR",
            "baseCurrency": "BTC",
            "quoteCurrency": "ZAR",
            "minBaseAmount": "0.0001",
            "maxBaseAmount": "5",
            "tickSize": "1",
            "baseDecimalPlaces": "8",
        }  # fmt: skip
    )
}


def _position(quantity: float) -> Position:
    return Position(
        key="BTCZAR-1", pair="BTCZAR", side=PositionSide.LONG, status=PositionStatus.OPEN, quantity=quantity,
        entry_price=1_200_000, margin=1200, leverage=1, stop_loss_price=1_100_000, take_profit_price=1_300_000,
        opened_at=NOW, deadline=NOW, entry_fee=4.2,
    )  # fmt: skip


def test_reconciliation_finds_what_helios_never_sent_and_missing_coins() -> None:
    opened = [{"orderId": "o9", "customerOrderId": "", "currencyPair": "BTCZAR"}]
    trades = [TRADE, TRADE | {"id": "t2", "customerOrderId": "someone-else"}]
    balances = {"BTC": Balance("BTC", 0.0005, 0, 0.0005)}
    found = mismatches(opened, trades, balances, {"k-O"}, [_position(0.001)], RULES)
    assert [m["kind"] for m in found] == ["unknown_open_order", "unknown_trade", "balance_short"]
    assert found[1]["key"] == "unknown_trade:t2"


def test_a_matching_account_reconciles_clean() -> None:
    balances = {"BTC": Balance("BTC", 0.001, 0, 0.001)}
    assert mismatches([], [TRADE], balances, {"k-O"}, [_position(0.001)], RULES) == []
