"""Fill models for market orders: walk the order book, else the last price plus slippage.

Every market order is a taker: it crosses the spread, as a VALR market order does, and pays
the taker fee. Paper trading and backtests price their fills with these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from helios_core.market import Book
from helios_core.trading.enums import OrderSide


@dataclass(frozen=True, slots=True)
class FillModel:
    taker_fee: float = 0.0035  # VALR tier 1, spot with a fiat quote (ZAR): 0.35% taker
    maker_fee: float = 0.0018  # and 0.18% maker; market orders never make
    slippage_bps: float = 5.0  # off the last price when there is no usable book
    book_max_age_s: float = 10.0  # a book further than this from now is not the market at now

    def __post_init__(self) -> None:
        if not 0.0 <= self.taker_fee < 1.0 or not -1.0 < self.maker_fee < 1.0:
            raise ValueError("fees must be fractions of the notional")
        if not 0.0 <= self.slippage_bps < 10_000:
            raise ValueError(f"slippage_bps must be in [0, 10000), got {self.slippage_bps}")
        if not self.book_max_age_s > 0:
            raise ValueError(f"book_max_age_s must be positive, got {self.book_max_age_s}")


@dataclass(frozen=True, slots=True)
class MarketFill:
    """How a market order fills: volume-weighted price, fee in the quote currency, and what
    priced it (BOOK: walked the book, LAST: the last price plus slippage)."""

    price: float
    quantity: float
    fee: float
    liquidity: str
    source: str
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


def market_fill(
    side: OrderSide, quantity: float, book: Book | None, last: float, now: float, model: FillModel
) -> MarketFill:
    """Fill a market order of `quantity` (base currency) as the exchange would.

    With a fresh book the order walks the opposite side level by level. What the book cannot
    absorb fills at its worst level moved by the slippage model, so a thin book costs more
    rather than filling at a price nobody offered. Without a usable book the whole order
    fills at `last` moved by the slippage model. ValueError when there is no price at all.
    """
    if not quantity > 0 or not math.isfinite(quantity):
        raise ValueError(f"quantity must be positive, got {quantity}")
    buy = side is OrderSide.BUY
    slip = model.slippage_bps / 10_000
    levels = _levels(book, buy, now, model)
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
    return MarketFill(price, quantity, spent * model.taker_fee, "TAKER", source, touched)


def fresh(book: Book | None, now: float, model: FillModel) -> bool:
    """Whether `book` is the market at `now`: both sides present and stamped close to `now`
    (a book from well after `now` is no more the market then than a stale one)."""
    if book is None or not book.bids or not book.asks:
        return False
    return book.ts is None or abs(now - book.ts) <= model.book_max_age_s


def mid(book: Book | None, now: float, model: FillModel) -> float | None:
    if not fresh(book, now, model):
        return None
    assert book is not None  # noqa: S101 -- fresh() checked it
    return (book.bids[0][0] + book.asks[0][0]) / 2


def _levels(book: Book | None, buy: bool, now: float, model: FillModel) -> tuple[tuple[float, float], ...]:
    if book is None or (book.ts is not None and abs(now - book.ts) > model.book_max_age_s):
        return ()
    return book.asks if buy else book.bids
