"""Paper fills for market orders: walk the order book the stream keeps, else the last price
plus a slippage model. Every paper order is a taker: it crosses the spread, as a VALR market
order does, and pays the taker fee."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from helios_live.stream.events import Book


@dataclass(frozen=True, slots=True)
class PaperConfig:
    taker_fee: float = 0.0035  # VALR tier 1, spot with a fiat quote (ZAR): 0.35% taker
    maker_fee: float = 0.0018  # and 0.18% maker; paper market orders never make
    slippage_bps: float = 5.0  # off the last price when there is no usable book
    book_max_age_s: float = 10.0  # an older book is not the market any more


@dataclass(frozen=True, slots=True)
class Fill:
    price: float  # volume-weighted
    quantity: float
    fee: float  # quote currency
    liquidity: str
    source: str  # BOOK | LAST
    levels: int

    @property
    def notional(self) -> float:
        return self.price * self.quantity


def walk(levels: Sequence[tuple[float, float]], quantity: float) -> tuple[float, float, int]:
    """(quote spent, base filled, levels touched) taking `quantity` from `levels`, best first."""
    spent = filled = 0.0
    touched = 0
    for price, size in levels:
        if filled >= quantity:
            break
        take = min(size, quantity - filled)
        spent += take * price
        filled += take
        touched += 1
    return spent, filled, touched


def market_fill(side: str, quantity: float, book: Book | None, last: float, now: float, config: PaperConfig) -> Fill:
    """Fill a market order of `quantity` (base currency) as the exchange would.

    With a fresh book the order walks the opposite side level by level. What the book cannot
    absorb fills at its worst level moved by the slippage model, so a thin book costs more
    rather than filling at a price nobody offered. Without a usable book the whole order
    fills at `last` moved by the slippage model.
    """
    if not quantity > 0 or not math.isfinite(quantity):
        raise ValueError(f"quantity must be positive, got {quantity}")
    buy = side == "BUY"
    slip = config.slippage_bps / 10_000
    levels = _levels(book, buy, now, config)
    if levels:
        spent, filled, touched = walk(levels, quantity)
        source = "BOOK"
        if filled < quantity:
            worst = levels[-1][0] * (1 + slip if buy else 1 - slip)
            spent += (quantity - filled) * worst
    else:
        if not last > 0:
            raise ValueError("no order book and no last price to fill at")
        spent = quantity * last * (1 + slip if buy else 1 - slip)
        source, touched = "LAST", 0
    price = spent / quantity
    return Fill(price, quantity, spent * config.taker_fee, "TAKER", source, touched)


def _levels(book: Book | None, buy: bool, now: float, config: PaperConfig) -> tuple[tuple[float, float], ...]:
    if book is None:
        return ()
    if book.ts is not None and now - book.ts > config.book_max_age_s:
        return ()
    return book.asks if buy else book.bids
