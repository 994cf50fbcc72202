"""Positions and the rules that close them.

A position commits `margin` of cash and holds `margin * leverage` of exposure. It is named by
`key`, derived from the decision that opened it, so the same decision can never open it twice.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import MISSING, dataclass, fields
from datetime import datetime

from helios_core.trading.enums import CloseReason, PositionSide, PositionStatus
from helios_core.trading.orders import Order, require_aware

KEYS = uuid.UUID("6f1c2e0a-57c4-4d6b-9a8e-2b7f0c3d9e11")  # namespace of position keys


def position_key(pair: str, candle_ts: float, model_version: str) -> str:
    """The same decision always names the same position: a restart cannot open it twice."""
    return str(uuid.uuid5(KEYS, f"{pair}|{int(candle_ts)}|{model_version}"))


@dataclass(frozen=True, slots=True)
class Position:
    """A position's whole state after a change. Money in the quote currency, quantity in the base."""

    key: str
    pair: str
    side: PositionSide
    status: PositionStatus
    quantity: float
    entry_price: float
    margin: float
    leverage: float
    stop_loss_price: float
    take_profit_price: float
    opened_at: datetime
    deadline: datetime
    entry_fee: float
    exit_price: float | None = None
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    exit_fee: float = 0.0
    realised_pnl: float | None = None  # net of both fees, trims included
    # What trims (rebalancing) realised so far, net of their fees and their share of the entry
    # fee; margin, quantity and entry fee then hold only what is left.
    reduced_pnl: float = 0.0

    def __post_init__(self) -> None:
        require_aware("opened_at", self.opened_at)
        require_aware("deadline", self.deadline)
        if self.closed_at is not None:
            require_aware("closed_at", self.closed_at)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        # A spool written before a field was added holds fewer values: the new ones take their defaults.
        values = [*state, *([MISSING] * (len(fields(self)) - len(state)))]
        for f, value in zip(fields(self), values, strict=True):
            object.__setattr__(self, f.name, f.default if value is MISSING else value)


@dataclass(frozen=True, slots=True)
class Execution:
    """An order that ran its course and the position as it stands after it; `earlier`: the
    orders of the same close that filled only in part before this one finished it."""

    order: Order
    position: Position
    earlier: tuple[Order, ...] = ()


def gross_pnl(position: Position, price: float) -> float:
    return position.side.sign * (price - position.entry_price) * position.quantity


def exit_reason(position: Position, price: float, now: float, taker_fee: float) -> CloseReason | None:
    """What closes `position` at `price` (NaN or <= 0: no price, time-outs only) at epoch `now`.

    A stop is checked before a take-profit, both before liquidation (the margin and P&L, less
    the fee of closing, no longer positive), and the time-out last."""
    if price > 0 and math.isfinite(price):
        long = position.side is PositionSide.LONG
        if price <= position.stop_loss_price if long else price >= position.stop_loss_price:
            return CloseReason.STOP_LOSS
        if price >= position.take_profit_price if long else price <= position.take_profit_price:
            return CloseReason.TAKE_PROFIT
        fee = price * position.quantity * taker_fee
        if position.margin + gross_pnl(position, price) - fee <= 0:
            return CloseReason.LIQUIDATION
    if now >= position.deadline.timestamp():
        return CloseReason.TIMEOUT
    return None
