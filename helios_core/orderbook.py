"""A level-2 order book rebuilt from a snapshot and incremental updates, and its features.

Pure: the caller parses the exchange's messages (Binance diff-depth rows, VALR aggregated
order-book updates) and applies them here. A quantity of 0 deletes a level.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from helios_core.errors import DataValidationError


@dataclass(frozen=True)
class BookTop:
    """Best prices and the quantity resting on the best `levels` levels of each side."""

    bid: float
    ask: float
    bid_qty: float
    ask_qty: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> float:
        """(ask - bid) / mid, a fraction."""
        return (self.ask - self.bid) / self.mid

    @property
    def imbalance(self) -> float:
        """(bid qty - ask qty) / (bid qty + ask qty), in [-1, 1]."""
        return (self.bid_qty - self.ask_qty) / (self.bid_qty + self.ask_qty)


class OrderBook:
    """Price -> quantity per side."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set(self, side: str, price: float, quantity: float) -> None:
        """Set one level; side is `b`/`bid`/`buy` or `a`/`ask`/`sell`."""
        if not price > 0 or quantity < 0:
            raise DataValidationError(f"book level needs price > 0 and quantity >= 0, got {price}, {quantity}")
        levels = self.bids if side.lower() in ("b", "bid", "buy") else self.asks
        if quantity == 0:
            levels.pop(price, None)
        else:
            levels[price] = quantity

    def top(self, levels: int = 10) -> BookTop | None:
        """The top of the book, or None while a side is empty or the book is crossed."""
        if not self.bids or not self.asks:
            return None
        bids = heapq.nlargest(levels, self.bids)
        asks = heapq.nsmallest(levels, self.asks)
        if bids[0] >= asks[0]:
            return None
        return BookTop(bids[0], asks[0], sum(self.bids[p] for p in bids), sum(self.asks[p] for p in asks))
