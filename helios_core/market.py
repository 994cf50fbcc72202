"""Market data as the kernel consumes it: one typed union, whatever the data client (a venue's
stream, a replay of recorded data).

Times are epoch seconds (UTC). Prices and quantities are positive finite numbers: a data client
validates what it receives before it builds one of these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One trade on the exchange."""

    pair: str
    ts: float
    price: float
    quantity: float
    is_buy: bool | None  # the taker's side; None when the exchange did not say
    trade_id: str


@dataclass(frozen=True, slots=True)
class Bucket:
    """An exchange-built candle as it stands; the last update before it closes wins."""

    pair: str
    start: int
    period: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class MarketSummary:
    """The exchange's summary of a pair: last price and, when it says, best bid and ask."""

    pair: str
    ts: float
    last: float
    bid: float | None
    ask: float | None


@dataclass(frozen=True, slots=True)
class Book:
    """Aggregated order book: (price, quantity) levels, best first."""

    pair: str
    ts: float | None
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The data client lost the exchange; what follows may have a hole before it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The data client is connected (again) and subscribed."""

    source: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock reached `ts`: close the candles that are due, check time-outs."""

    ts: float


MarketData = TradeTick | Bucket | Book | MarketSummary
DataEvent = TradeTick | Bucket | Book | MarketSummary | Disconnected | Reconnected | Tick
PairEvent = TradeTick | Bucket | Book | MarketSummary | Tick | Disconnected


def exchange_time(event: DataEvent) -> float | None:
    """The exchange's time an event tells, for a clock that follows the data.

    A bucket tells its start (it may be sent during or after its minute); a book is left out,
    since an aggregated book may repeat an old change time.
    """
    if isinstance(event, TradeTick | MarketSummary | Tick):
        return event.ts
    if isinstance(event, Bucket):
        return float(event.start)
    return None
