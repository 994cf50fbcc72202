"""Orders as the trading side sends them and hears back about them.

An `OrderIntent` is what the desk wants done; an execution client answers with order events:
accepted, filled (possibly in parts, possibly long after), rejected, or cancelled by the venue.
`Order` folds those events into the order's state. The same client order id names the order
from the intent to its last event, so a retry can never place it twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from helios_core.trading.enums import OrderPurpose, OrderSide, OrderStatus, TradingMode


def require_aware(name: str, value: datetime) -> None:
    """Refuse a naive datetime: nobody could tell which clock it was read from."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A market order the desk wants placed. `quantity` is in the base currency; `leverage`
    is what the margin behind it is multiplied by; `reason` says why a close is wanted."""

    client_order_id: str
    position_key: str
    pair: str
    side: OrderSide
    purpose: OrderPurpose
    quantity: float
    mode: TradingMode
    created_at: datetime
    leverage: float = 1.0
    reason: str = ""

    def __post_init__(self) -> None:
        require_aware("created_at", self.created_at)
        if not 0.0 < self.quantity < math.inf:
            raise ValueError(f"quantity must be positive and finite, got {self.quantity}")
        if not 1.0 <= self.leverage < math.inf:
            raise ValueError(f"leverage must be >= 1, got {self.leverage}")


@dataclass(frozen=True, slots=True)
class Fill:
    """Part or all of an order, executed. `price` is volume-weighted over the levels taken;
    `fee` is in the quote currency; `source` says what priced it (BOOK, LAST, or the venue)."""

    client_order_id: str
    price: float
    quantity: float
    fee: float
    liquidity: str  # TAKER | MAKER
    source: str
    levels: int
    filled_at: datetime

    def __post_init__(self) -> None:
        require_aware("filled_at", self.filled_at)

    @property
    def notional(self) -> float:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The venue has the order; `quantity`, when given, is what it took (an exchange rounds an
    order to the pair's decimals) and what the order's fills are counted against."""

    client_order_id: str
    ts: float
    quantity: float | None = None


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """Part or all of the order filled; `final` when the venue says nothing remains (a buy that
    pays its fee in the base currency holds less than it bought, so quantities cannot tell)."""

    client_order_id: str
    fill: Fill
    ts: float
    final: bool = False


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_order_id: str
    reason: str
    ts: float


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """The venue (or the desk) cancelled what was not filled yet."""

    client_order_id: str
    reason: str
    ts: float


OrderEvent = OrderAccepted | OrderFilled | OrderRejected | OrderCanceled


@dataclass(frozen=True, slots=True)
class Order:
    """An intent and what became of it. Events after a terminal state change nothing."""

    intent: OrderIntent
    status: OrderStatus = OrderStatus.SUBMITTED
    fills: tuple[Fill, ...] = ()
    reason: str = ""

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def filled_quantity(self) -> float:
        return sum(f.quantity for f in self.fills)

    @property
    def notional(self) -> float:
        return sum(f.notional for f in self.fills)

    @property
    def fees(self) -> float:
        return sum(f.fee for f in self.fills)

    @property
    def average_price(self) -> float:
        quantity = self.filled_quantity
        return self.notional / quantity if quantity > 0 else math.nan

    def apply(self, event: OrderEvent) -> Order:
        """The order after `event` (one of its own)."""
        if event.client_order_id != self.client_order_id:
            raise ValueError(f"event for {event.client_order_id} applied to order {self.client_order_id}")
        if self.status.terminal:
            return self
        if isinstance(event, OrderAccepted):
            intent = self.intent if event.quantity is None else replace(self.intent, quantity=event.quantity)
            status = OrderStatus.ACCEPTED if self.status is OrderStatus.SUBMITTED else self.status
            return replace(self, intent=intent, status=status)
        if isinstance(event, OrderFilled):
            fills = (*self.fills, event.fill)
            done = event.final or sum(f.quantity for f in fills) >= self.intent.quantity * (1 - 1e-9)
            return replace(self, fills=fills, status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
        if isinstance(event, OrderRejected):
            return replace(self, status=OrderStatus.REJECTED, reason=event.reason)
        return replace(self, status=OrderStatus.CANCELED, reason=event.reason)
