"""VALR's account WebSocket messages (docs/valr-wire.md), parsed into typed updates.

Like the trade stream's parser, nothing the exchange (or anything on the wire) sends can raise
out of `parse`: a message is an update, a control message, or a `Malformed` naming what was wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ORDER_STATUSES = {
    "Placed": "ACCEPTED",
    "Active": "ACCEPTED",
    "Partially Filled": "PARTIALLY_FILLED",
    "Filled": "FILLED",
    "Cancelled": "CANCELLED",
    "Failed": "FAILED",
    "Expired": "EXPIRED",
}
CONTROL = ("AUTHENTICATED", "PONG", "SUBSCRIBED")


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """An order's state on VALR (`ORDER_STATUS_UPDATE`, `FAILED_ORDER`, or a REST status)."""

    order_id: str
    customer_order_id: str
    pair: str
    status: str  # one of ORDER_STATUSES' values
    original: float
    remaining: float
    reason: str
    at: datetime

    @property
    def executed(self) -> float:
        return max(0.0, self.original - self.remaining)


@dataclass(frozen=True, slots=True)
class AccountTrade:
    """One trade of the account; `fee` in `fee_currency`, as VALR charges it."""

    trade_id: str
    order_id: str
    customer_order_id: str
    pair: str
    side: str  # BUY | SELL
    price: float
    quantity: float
    fee: float
    fee_currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Processed:
    order_id: str
    success: bool
    reason: str


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    currency: str
    available: float
    reserved: float
    total: float


@dataclass(frozen=True, slots=True)
class OpenOrders:
    orders: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Control:
    kind: str


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


AccountUpdate = OrderStatus | AccountTrade | Processed | BalanceUpdate | OpenOrders | Control | Malformed


def parse(raw: str | bytes, now: datetime) -> AccountUpdate:
    """`raw` as an update; `now` stamps one that carries no time of its own."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Malformed(f"not JSON: {_peek(raw)}")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return Malformed(f"no message type: {_peek(raw)}")
    kind, data = message["type"], message.get("data")
    try:
        if kind in CONTROL:
            return Control(kind)
        if kind in ("ORDER_STATUS_UPDATE", "FAILED_ORDER"):
            return order_status(_dict(data), now, failed=kind == "FAILED_ORDER")
        if kind == "NEW_ACCOUNT_TRADE":
            return trade(_dict(data))
        if kind == "ORDER_PROCESSED":
            body = _dict(data)
            return Processed(str(body["orderId"]), bool(body.get("success", False)), str(body.get("failureReason", "")))
        if kind == "BALANCE_UPDATE":
            body = _dict(data)
            currency = body["currency"]
            symbol = currency["symbol"] if isinstance(currency, dict) else currency
            return BalanceUpdate(str(symbol), _num(body["available"]), _num(body["reserved"]), _num(body["total"]))
        if kind == "OPEN_ORDERS_UPDATE":
            if not isinstance(data, list) or not all(isinstance(o, dict) for o in data):
                return Malformed("OPEN_ORDERS_UPDATE without a list of orders")
            return OpenOrders(tuple(data))
    except (KeyError, TypeError, ValueError) as exc:
        return Malformed(f"{kind}: {type(exc).__name__}: {str(exc)[:120]}")
    return Control(kind)  # an event Helios does not use (history records, transfers)


def order_status(body: dict[str, Any], now: datetime, failed: bool = False) -> OrderStatus:
    """An order status object (from the stream or from REST). KeyError / ValueError when malformed."""
    if failed:
        status, original, remaining = "FAILED", 0.0, 0.0
    else:
        known = ORDER_STATUSES.get(str(body["orderStatusType"]))
        if known is None:
            raise ValueError(f"unknown orderStatusType {body['orderStatusType']!r}")
        status = known
        original, remaining = _num(body["originalQuantity"]), _num(body["remainingQuantity"])
    return OrderStatus(
        order_id=str(body["orderId"]),
        customer_order_id=str(body.get("customerOrderId") or ""),
        pair=str(body.get("currencyPair", "")),
        status=status,
        original=original,
        remaining=remaining,
        reason=str(body.get("failedReason") or ""),
        at=_time(body.get("orderUpdatedAt")) if body.get("orderUpdatedAt") else now,
    )


def trade(body: dict[str, Any]) -> AccountTrade:
    side = str(body["side"]).upper()
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side {body['side']!r}")
    price, quantity = _num(body["price"]), _num(body["quantity"])
    if not price > 0 or not quantity > 0:
        raise ValueError(f"price {price} and quantity {quantity} must be positive")
    return AccountTrade(
        trade_id=str(body["id"]),
        order_id=str(body["orderId"]),
        customer_order_id=str(body.get("customerOrderId") or ""),
        pair=str(body["currencyPair"]),
        side=side,
        price=price,
        quantity=quantity,
        fee=_num(body.get("fee", "0")),
        fee_currency=str(body.get("feeCurrency", "")),
        at=_time(body["tradedAt"]),
    )


def _dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    return data


def _num(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean where a number belongs")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a finite, non-negative number")
    return number


def _time(value: Any) -> datetime:
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return at.astimezone(UTC)


def _peek(raw: str | bytes) -> str:
    return repr(raw[:80])
