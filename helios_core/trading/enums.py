"""The words of the trading domain. String enums: a value is its own ledger and JSON spelling."""

from __future__ import annotations

from enum import StrEnum


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class PositionSide(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def entry(self) -> OrderSide:
        """The order side that opens a position of this side."""
        return OrderSide.BUY if self is PositionSide.LONG else OrderSide.SELL

    @property
    def exit(self) -> OrderSide:
        """The order side that closes it."""
        return OrderSide.SELL if self is PositionSide.LONG else OrderSide.BUY

    @property
    def sign(self) -> float:
        return 1.0 if self is PositionSide.LONG else -1.0


class TradingMode(StrEnum):
    PAPER = "PAPER"  # filled on the streamed book, nothing sent
    SHADOW = "SHADOW"  # filled as paper, and every order built, rounded and signed for VALR, not sent
    LIVE = "LIVE"  # sent to VALR


class PositionStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class OrderPurpose(StrEnum):
    OPEN = "OPEN"
    CLOSE = "CLOSE"
    REDUCE = "REDUCE"  # a rebalance trims part of a position; the rest stays open


class OrderStatus(StrEnum):
    SUBMITTED = "SUBMITTED"  # handed to the execution client, no answer yet
    ACCEPTED = "ACCEPTED"  # the venue has it
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELED)


class CloseReason(StrEnum):
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    LIQUIDATION = "LIQUIDATION"
    TIMEOUT = "TIMEOUT"
    MANUAL = "MANUAL"
    EMERGENCY = "EMERGENCY"
    REBALANCE = "REBALANCE"  # trimmed to a target of 0: the allocation holds none of the pair
    END_OF_TEST = "END_OF_TEST"  # a backtest's data ended with the position open
