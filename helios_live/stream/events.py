"""VALR trade-stream messages parsed into typed, validated events.

Every message becomes an event, a control message, or a counted rejection: nothing an
exchange (or an attacker on the wire) sends can raise out of `Parser.parse`. Plain dict
access and float conversion rather than a schema library: this is the hot path (see
benchmarks/bench_stream.py).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EARLIEST = 1_230_940_800.0  # 2009-01-03, the first Bitcoin block: nothing traded before it
MAX_AHEAD_S = 300.0  # exchange clocks drift; five minutes ahead of ours is not drift


@dataclass(frozen=True, slots=True)
class Trade:
    pair: str
    ts: float  # epoch seconds
    price: float
    quantity: float
    is_buy: bool | None  # the taker's side; None when the exchange did not say
    trade_id: str


@dataclass(frozen=True, slots=True)
class Bucket:
    """A trade bucket (exchange-built candle) as it stands; the last update before it closes wins."""

    pair: str
    start: int  # epoch seconds
    period: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Summary:
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
class Control:
    kind: str  # SUBSCRIBED, PONG, ERROR, ...
    message: str = ""


Event = Trade | Bucket | Summary | Book
_SIDES: dict[Any, bool] = {"buy": True, "sell": False}
CONTROL_TYPES = frozenset({"SUBSCRIBED", "PONG", "AUTHENTICATED", "UNSUBSCRIBED", "NO_SUBSCRIPTIONS", "ERROR"})


class Invalid(Exception):  # noqa: N818 -- a reason, caught within this module only
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("bad_number")
    try:
        x = float(value)
    except ValueError:
        raise Invalid("bad_number") from None
    if not math.isfinite(x):
        raise Invalid("bad_number")
    return x


def _positive(value: Any) -> float:
    x = _number(value)
    if x <= 0:
        raise Invalid("non_positive")
    return x


class Parser:
    """Parses one message at a time; counts what it accepted and rejected by reason."""

    def __init__(self, pairs: Iterable[str], now: Callable[[], float] = time.time) -> None:
        self.pairs = frozenset(pairs)
        self._now = now
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def parse(self, raw: str | bytes) -> Event | Control | None:
        """The event in `raw`, a control message, or None (rejected and counted)."""
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            self.rejected["not_json"] += 1
            return None
        try:
            if not isinstance(message, dict):
                raise Invalid("not_object")
            kind = message.get("type")
            handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                if kind in CONTROL_TYPES:
                    self.accepted[kind] += 1
                    return Control(kind, str(message.get("message", "")))
                raise Invalid("unknown_type")
            data = message.get("data")
            if not isinstance(data, dict):
                raise Invalid("missing_field")
            pair = message.get("currencyPairSymbol")
            if pair not in self.pairs:
                raise Invalid("unknown_pair")
            event = handler(self, pair, data)
        except Invalid as exc:
            self.rejected[exc.reason] += 1
            return None
        except (KeyError, TypeError, ValueError, OverflowError):
            self.rejected["malformed"] += 1
            return None
        self.accepted[message["type"]] += 1
        return event

    def _timestamp(self, value: Any) -> float:
        if not isinstance(value, str) or not value.endswith("Z"):
            raise Invalid("bad_timestamp")
        try:
            ts = datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise Invalid("bad_timestamp") from None
        if not EARLIEST <= ts <= self._now() + MAX_AHEAD_S:
            raise Invalid("bad_timestamp")
        return ts

    def _trade(self, pair: str, data: dict[str, Any]) -> Trade:
        side = data.get("takerSide")
        if side is not None and side not in _SIDES:
            raise Invalid("bad_side")
        ts = self._timestamp(data["tradedAt"])
        price, quantity = _positive(data["price"]), _positive(data["quantity"])
        return Trade(pair, ts, price, quantity, _SIDES.get(side), str(data.get("id", data.get("sequenceId", ""))))

    def _bucket(self, pair: str, data: dict[str, Any]) -> Bucket:
        period = data["bucketPeriodInSeconds"]
        if not isinstance(period, int) or isinstance(period, bool) or period <= 0:
            raise Invalid("bad_number")
        start = self._timestamp(data["startTime"])
        if start % period:
            raise Invalid("bad_timestamp")
        o, h, low, c = (_positive(data[k]) for k in ("open", "high", "low", "close"))
        volume = _number(data["volume"])
        if volume < 0 or not (low <= min(o, c) and max(o, c) <= h):
            raise Invalid("inconsistent")
        return Bucket(pair, int(start), period, o, h, low, c, volume)

    def _summary(self, pair: str, data: dict[str, Any]) -> Summary:
        bid = _positive(data["bidPrice"]) if "bidPrice" in data else None
        ask = _positive(data["askPrice"]) if "askPrice" in data else None
        if bid is not None and ask is not None and bid > ask:
            raise Invalid("crossed_book")
        return Summary(pair, self._timestamp(data["created"]), _positive(data["lastTradedPrice"]), bid, ask)

    def _book(self, pair: str, data: dict[str, Any]) -> Book:
        bids = _levels(data["Bids"])
        asks = _levels(data["Asks"])
        if bids and asks and bids[0][0] >= asks[0][0]:
            raise Invalid("crossed_book")
        stamp = data.get("LastChange")
        return Book(pair, self._timestamp(stamp) if stamp is not None else None, bids, asks)


def _levels(raw: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list):
        raise Invalid("missing_field")
    return tuple((_positive(level["price"]), _positive(level["quantity"])) for level in raw)


_HANDLERS: dict[str, Callable[[Parser, str, dict[str, Any]], Event]] = {
    "NEW_TRADE": Parser._trade,
    "NEW_TRADE_BUCKET": Parser._bucket,
    "MARKET_SUMMARY_UPDATE": Parser._summary,
    "AGGREGATED_ORDERBOOK_UPDATE": Parser._book,
}
