"""VALR's trade-stream wire format: messages parsed into typed, validated market events, and
the same events written back as VALR sends them (the exchange simulator speaks through it).

Every message becomes an event, a control message, or a counted rejection: nothing an
exchange (or an attacker on the wire) sends can raise out of `Parser.parse`. Plain dict
access and float conversion rather than a schema library: this is the hot path (see
benchmarks/bench_stream.py). Writing then reading an event gives the same event back.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from helios_core.candles import EARLIEST_S
from helios_core.market import Book, Bucket, MarketSummary, TradeTick
from helios_core.numbers import strict_number
from helios_live.data.recorded import SummaryFigures

# The market-data events of VALR's trade WebSocket: the wire name of each kind of event.
EVENT_NAMES: dict[type, str] = {
    TradeTick: "NEW_TRADE",
    Bucket: "NEW_TRADE_BUCKET",
    MarketSummary: "MARKET_SUMMARY_UPDATE",
    Book: "AGGREGATED_ORDERBOOK_UPDATE",
}
EVENTS = tuple(EVENT_NAMES.values())
MAX_AHEAD_S = 300.0  # exchange clocks drift; five minutes ahead of ours is not drift


@dataclass(frozen=True, slots=True)
class Control:
    kind: str  # SUBSCRIBED, PONG, ERROR, ...
    message: str = ""


Event = TradeTick | Bucket | MarketSummary | Book
_SIDES: dict[Any, bool] = {"buy": True, "sell": False}
CONTROL_TYPES = frozenset({"SUBSCRIBED", "PONG", "AUTHENTICATED", "UNSUBSCRIBED", "NO_SUBSCRIPTIONS", "ERROR"})


class Invalid(Exception):  # noqa: N818 -- a reason, caught within this module only
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _number(value: Any) -> float:
    try:
        return strict_number(value)
    except ValueError:
        raise Invalid("bad_number") from None


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
        if not EARLIEST_S <= ts <= self._now() + MAX_AHEAD_S:
            raise Invalid("bad_timestamp")
        return ts

    def _trade(self, pair: str, data: dict[str, Any]) -> TradeTick:
        side = data.get("takerSide")
        if side is not None and side not in _SIDES:
            raise Invalid("bad_side")
        ts = self._timestamp(data["tradedAt"])
        price, quantity = _positive(data["price"]), _positive(data["quantity"])
        return TradeTick(pair, ts, price, quantity, _SIDES.get(side), str(data.get("id", data.get("sequenceId", ""))))

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

    def _summary(self, pair: str, data: dict[str, Any]) -> MarketSummary:
        bid = _positive(data["bidPrice"]) if "bidPrice" in data else None
        ask = _positive(data["askPrice"]) if "askPrice" in data else None
        if bid is not None and ask is not None and bid > ask:
            raise Invalid("crossed_book")
        return MarketSummary(pair, self._timestamp(data["created"]), _positive(data["lastTradedPrice"]), bid, ask)

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
    EVENT_NAMES[TradeTick]: Parser._trade,
    EVENT_NAMES[Bucket]: Parser._bucket,
    EVENT_NAMES[MarketSummary]: Parser._summary,
    EVENT_NAMES[Book]: Parser._book,
}


def decimal_text(value: float) -> str:
    """A float as VALR writes numbers: plain decimal, no exponent, no trailing zeros (`9500`, `0.00001`)."""
    # repr is the shortest text that round-trips; Decimal only to drop an exponent form.
    text = repr(float(value))
    if "e" in text or "n" in text:
        text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def iso_ms(seconds: float) -> str:
    """`2019-04-25T19:51:55.393Z` for epoch `seconds`."""
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(round(seconds, 3) * 1e6))
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _message(event: str, pair: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": event, "currencyPairSymbol": pair, "data": data}, separators=(",", ":"))


def trade_message(tick: TradeTick) -> str:
    data: dict[str, Any] = {
        "price": decimal_text(tick.price),
        "quantity": decimal_text(tick.quantity),
        "currencyPair": tick.pair,
        "tradedAt": iso_ms(tick.ts),
        "id": tick.trade_id,
    }
    if tick.is_buy is not None:
        data["takerSide"] = "buy" if tick.is_buy else "sell"
    return _message(EVENT_NAMES[TradeTick], tick.pair, data)


def bucket_message(bucket: Bucket) -> str:
    start = datetime.fromtimestamp(bucket.start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "currencyPairSymbol": bucket.pair,
        "bucketPeriodInSeconds": bucket.period,
        "startTime": start,
        "open": decimal_text(bucket.open),
        "high": decimal_text(bucket.high),
        "low": decimal_text(bucket.low),
        "close": decimal_text(bucket.close),
        "volume": decimal_text(bucket.volume),
    }
    return _message(EVENT_NAMES[Bucket], bucket.pair, data)


def book_message(book: Book, sequence: int) -> str:
    """An AGGREGATED_ORDERBOOK_UPDATE. Recordings without order counts (Binance depth) give
    `orderCount` 1, the least a resting level can have."""

    def levels(side: str, rows: tuple[tuple[float, float], ...]) -> list[dict[str, Any]]:
        return [
            {
                "side": side,
                "quantity": decimal_text(q),
                "price": decimal_text(p),
                "currencyPair": book.pair,
                "orderCount": 1,
            }
            for p, q in rows
        ]

    data: dict[str, Any] = {"Asks": levels("sell", book.asks), "Bids": levels("buy", book.bids)}
    if book.ts is not None:
        data["LastChange"] = iso_ms(book.ts)
    data["SequenceNumber"] = sequence
    return _message(EVENT_NAMES[Book], book.pair, data)


def summary_data(summary: MarketSummary, figures: SummaryFigures) -> dict[str, Any]:
    """The `data` of a MARKET_SUMMARY_UPDATE; `changeFromPrevious` is a percentage, left out
    (with `previousClosePrice`) where the previous close is not known."""
    data: dict[str, Any] = {"currencyPairSymbol": summary.pair}
    if summary.bid is not None and summary.ask is not None:
        data |= {"askPrice": decimal_text(summary.ask), "bidPrice": decimal_text(summary.bid)}
    data["lastTradedPrice"] = decimal_text(summary.last)
    if figures.previous_close is not None:
        data["previousClosePrice"] = decimal_text(figures.previous_close)
    data |= {
        "baseVolume": decimal_text(figures.base_volume),
        "highPrice": decimal_text(figures.high),
        "lowPrice": decimal_text(figures.low),
        "created": iso_ms(summary.ts),
    }
    if figures.previous_close is not None:
        change = (summary.last / figures.previous_close - 1) * 100
        data["changeFromPrevious"] = decimal_text(round(change, 2))
    return data


def summary_message(summary: MarketSummary, figures: SummaryFigures) -> str:
    return _message(EVENT_NAMES[MarketSummary], summary.pair, summary_data(summary, figures))
