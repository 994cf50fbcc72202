"""Recorded candles, trades and order books as the timeline of messages VALR's trade stream sends.

The exchange simulator plays what this module builds; keeping the building pure (no clock,
no socket) lets tests check the timeline without a network and keeps the simulator itself
about timing and delivery. Messages follow VALR's wire format: numbers as decimal strings,
timestamps ISO-8601 UTC with `Z`. Two loaders read recordings from disk: the sample-data
folder (`load_recorded`) and Binance diff-depth CSVs rebuilt into order books
(`books_from_binance_depth`).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helios_core.candles import coerce_timestamps, validate_candles, validate_trades
from helios_core.errors import DataValidationError, SourceError
from helios_core.orderbook import OrderBook
from helios_core.pairs import normalise_pair
from helios_live.data.sources.file import file_kind, infer_timeframe, read_table
from helios_live.simulator.valr_rest import Recorded

log = logging.getLogger(__name__)

EVENTS = ("NEW_TRADE", "NEW_TRADE_BUCKET", "MARKET_SUMMARY_UPDATE", "AGGREGATED_ORDERBOOK_UPDATE")
BUCKET_S = 60
BOOK_LEVELS = 40
CANDLE_FIELDS = ("ts", "open", "high", "low", "close", "volume")
DAY_S = 86_400.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_TS = pd.Timestamp(EPOCH)
# At one instant a candle that just closed goes before trades stamped with that instant
# (they belong to the next candle); books sit between.
_PRIORITY = {"NEW_TRADE_BUCKET": 0, "AGGREGATED_ORDERBOOK_UPDATE": 1, "NEW_TRADE": 2}


@dataclass(frozen=True)
class BookSnapshot:
    """The order book of one pair at `ts`: (price, quantity) levels, best first, at most 40 a side."""

    ts: pd.Timestamp
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass(frozen=True)
class Event:
    """One message of the timeline: due at `at` (simulated epoch seconds), for `event` on `pair`."""

    at: float
    event: str
    pair: str
    message: str


def decimal_text(value: float) -> str:
    """A float as VALR writes numbers: plain decimal, no exponent, no trailing zeros (`9500`, `0.00001`)."""
    # repr is the shortest text that round-trips; Decimal only to drop an exponent form.
    text = repr(float(value))
    if "e" in text or "n" in text:
        text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def epoch_seconds(ts: datetime | pd.Timestamp) -> float:
    """Seconds since the Unix epoch of a timezone-aware instant."""
    return float((pd.Timestamp(ts) - _EPOCH_TS).total_seconds())


def utc_from_epoch(seconds: float) -> datetime:
    """The UTC datetime of epoch `seconds`, to the microsecond."""
    return EPOCH + timedelta(microseconds=round(seconds * 1e6))


def iso_ms(seconds: float) -> str:
    """`2019-04-25T19:51:55.393Z` for epoch `seconds`."""
    return utc_from_epoch(round(seconds, 3)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _seconds(ts: pd.Series) -> np.ndarray:
    values: np.ndarray = (ts - _EPOCH_TS).dt.total_seconds().to_numpy(dtype="float64")
    return values


def _at(ts: pd.Series) -> list[float]:
    at: list[float] = _seconds(ts).tolist()
    return at


def _message(event: str, pair: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": event, "currencyPairSymbol": pair, "data": data}, separators=(",", ":"))


def trade_events(pair: str, trades: pd.DataFrame) -> list[Event]:
    """NEW_TRADE per recorded trade (ts, trade_id, side BUY/SELL, price, quantity), due at its ts."""
    stamps = trades["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    rows = zip(
        _at(trades["ts"]),
        stamps,
        trades["trade_id"],
        trades["side"],
        trades["price"],
        trades["quantity"],
        strict=True,
    )
    return [
        Event(
            at,
            "NEW_TRADE",
            pair,
            _message(
                "NEW_TRADE",
                pair,
                {
                    "price": decimal_text(price),
                    "quantity": decimal_text(quantity),
                    "currencyPair": pair,
                    "tradedAt": stamp,
                    "takerSide": str(side).lower(),
                    "id": str(trade_id),
                },
            ),
        )
        for at, stamp, trade_id, side, price, quantity in rows
    ]


def bucket_events(pair: str, candles: pd.DataFrame) -> list[Event]:
    """NEW_TRADE_BUCKET per recorded 1m candle, due when it closes (ts + 60 s)."""
    stamps = candles["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    columns = (candles[c] for c in ("open", "high", "low", "close", "volume"))
    return [
        Event(
            at + BUCKET_S,
            "NEW_TRADE_BUCKET",
            pair,
            _message(
                "NEW_TRADE_BUCKET",
                pair,
                {
                    "currencyPairSymbol": pair,
                    "bucketPeriodInSeconds": BUCKET_S,
                    "startTime": stamp,
                    "open": decimal_text(o),
                    "high": decimal_text(h),
                    "low": decimal_text(low),
                    "close": decimal_text(c),
                    "volume": decimal_text(v),
                },
            ),
        )
        for at, stamp, o, h, low, c, v in zip(_at(candles["ts"]), stamps, *columns, strict=True)
    ]


def book_data(pair: str, book: BookSnapshot, sequence: int) -> dict[str, Any]:
    """The `data` of an AGGREGATED_ORDERBOOK_UPDATE.

    Binance depth has no order counts; `orderCount` is 1, the least a resting level can have.
    """

    def levels(side: str, rows: list[tuple[float, float]]) -> list[dict[str, Any]]:
        return [
            {"side": side, "quantity": decimal_text(q), "price": decimal_text(p), "currencyPair": pair, "orderCount": 1}
            for p, q in rows
        ]

    return {
        "Asks": levels("sell", book.asks),
        "Bids": levels("buy", book.bids),
        "LastChange": iso_ms(epoch_seconds(book.ts)),
        "SequenceNumber": sequence,
    }


def build_timeline(
    data: Recorded, books: Mapping[str, Sequence[BookSnapshot]] | None = None, since: datetime | None = None
) -> list[Event]:
    """Every trade, closed candle and book of every pair, merged in the order they become due.

    Events due before `since` are left out. Ties keep buckets, then books, then trades, each
    in recorded order.
    """
    events: list[Event] = []
    for pair, trades in data.trades.items():
        events += trade_events(pair, trades)
    for pair, candles in data.candles.items():
        events += bucket_events(pair, candles)
    for pair, snapshots in (books or {}).items():
        events += [
            Event(
                epoch_seconds(book.ts),
                "AGGREGATED_ORDERBOOK_UPDATE",
                pair,
                _message("AGGREGATED_ORDERBOOK_UPDATE", pair, book_data(pair, book, sequence)),
            )
            for sequence, book in enumerate(snapshots, start=1)
        ]
    events.sort(key=lambda e: (e.at, _PRIORITY[e.event]))  # stable: recorded order within a tie
    if since is None:
        return events
    first = bisect.bisect_left([e.at for e in events], epoch_seconds(since))
    return events[first:]


def earliest(data: Recorded, books: Mapping[str, Sequence[BookSnapshot]] | None = None) -> datetime | None:
    """The first timestamp anywhere in the recording (a candle's open time counts), or None if empty."""
    stamps = [frame["ts"].min() for frame in (*data.trades.values(), *data.candles.values()) if not frame.empty]
    stamps += [snapshots[0].ts for snapshots in (books or {}).values() if snapshots]
    return min(stamps).to_pydatetime() if stamps else None


@dataclass(frozen=True)
class _Known:
    at: np.ndarray  # when each price became known, non-decreasing epoch seconds
    price: np.ndarray
    high: np.ndarray
    low: np.ndarray
    cum_volume: np.ndarray  # leading 0, so a window's volume is one subtraction


class MarketSummaries:
    """MARKET_SUMMARY_UPDATE payloads from what was known of a pair at a simulated instant.

    Prices come from trades where a pair has them, else from closed 1m candles; bid and ask
    from the latest book where the pair has books. High, low and volume cover the last 24 h.
    `previousClosePrice` is the last price known 24 h earlier; where nothing was known then,
    it and `changeFromPrevious` (a percentage) are left out rather than made up.
    """

    def __init__(self, data: Recorded, books: Mapping[str, Sequence[BookSnapshot]] | None = None) -> None:
        self._known: dict[str, _Known] = {}
        for pair in {*data.trades, *data.candles}:
            trades = data.trades.get(pair)
            if trades is not None and not trades.empty:
                prices = trades["price"].to_numpy(dtype="float64")
                at, high, low, volume = _seconds(trades["ts"]), prices, prices, trades["quantity"]
            elif pair in data.candles and not data.candles[pair].empty:
                candles = data.candles[pair]
                prices = candles["close"].to_numpy(dtype="float64")
                at = _seconds(candles["ts"]) + BUCKET_S
                high, low, volume = candles["high"].to_numpy(), candles["low"].to_numpy(), candles["volume"]
            else:
                continue
            cum = np.concatenate([[0.0], np.cumsum(volume.to_numpy(dtype="float64"))])
            self._known[pair] = _Known(at, prices, np.asarray(high, "float64"), np.asarray(low, "float64"), cum)
        self._books = {pair: list(snaps) for pair, snaps in (books or {}).items()}
        self._book_at = {pair: [epoch_seconds(s.ts) for s in snaps] for pair, snaps in self._books.items()}

    @property
    def pairs(self) -> list[str]:
        """Pairs with prices to summarise."""
        return sorted(self._known)

    def data(self, pair: str, at: float) -> dict[str, Any] | None:
        """The summary of `pair` at epoch `at`, or None while nothing is known of its prices."""
        known = self._known.get(pair)
        if known is None:
            return None
        end = int(np.searchsorted(known.at, at, side="right"))
        if end == 0:
            return None
        begin = int(np.searchsorted(known.at, at - DAY_S, side="right"))
        last = float(known.price[end - 1])
        summary: dict[str, Any] = {"currencyPairSymbol": pair}
        book = self._book(pair, at)
        if book is not None and book.bids and book.asks:
            summary |= {"askPrice": decimal_text(book.asks[0][0]), "bidPrice": decimal_text(book.bids[0][0])}
        summary["lastTradedPrice"] = decimal_text(last)
        if begin > 0:
            summary["previousClosePrice"] = decimal_text(float(known.price[begin - 1]))
        high = float(known.high[begin:end].max()) if begin < end else last
        low = float(known.low[begin:end].min()) if begin < end else last
        summary |= {
            "baseVolume": decimal_text(float(known.cum_volume[end] - known.cum_volume[begin])),
            "highPrice": decimal_text(high),
            "lowPrice": decimal_text(low),
            "created": iso_ms(at),
        }
        if begin > 0:
            change = (last / float(known.price[begin - 1]) - 1) * 100
            summary["changeFromPrevious"] = decimal_text(round(change, 2))
        return summary

    def message(self, pair: str, at: float) -> str | None:
        """The MARKET_SUMMARY_UPDATE text of `pair` at epoch `at`, or None while nothing is known."""
        data = self.data(pair, at)
        return None if data is None else _message("MARKET_SUMMARY_UPDATE", pair, data)

    def _book(self, pair: str, at: float) -> BookSnapshot | None:
        if pair not in self._books:
            return None
        index = bisect.bisect_right(self._book_at[pair], at)
        return self._books[pair][index - 1] if index else None


def books_from_binance_depth(
    snapshot_csv: Path, updates_csv: Path, pair: str, every_s: float = 1.0
) -> list[BookSnapshot]:
    """Rebuild a pair's book from a Binance depth snapshot and diff updates, sampled every `every_s` s.

    Updates already contained in the snapshot (`last_update_id` at or below its id) are
    skipped, as Binance prescribes. A break in the `pu` chain is logged, not fatal: the
    shared recordings are excerpts. Samples where a side is empty or the book is crossed
    are left out, so every snapshot has best bid < best ask.
    """
    if not every_s > 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    snapshot, updates = pd.read_csv(snapshot_csv), pd.read_csv(updates_csv)
    if snapshot.empty:
        raise DataValidationError(f"{snapshot_csv}: empty depth snapshot")
    book = OrderBook()
    for side, price, qty in zip(snapshot["side"], snapshot["price"], snapshot["qty"], strict=True):
        book.set(str(side), float(price), float(qty))
    last_id = int(snapshot["last_update_id"].max())
    start_ms = int(snapshot["timestamp"].max())
    updates = updates.loc[updates["last_update_id"] > last_id].sort_values(
        ["timestamp", "last_update_id"], kind="stable"
    )
    batches = list(updates.groupby(["timestamp", "last_update_id"], sort=False))
    end_ms = int(updates["timestamp"].max()) if len(updates) else start_ms
    symbol = normalise_pair(pair)
    out: list[BookSnapshot] = []
    position = 0
    for step in range(math.ceil((end_ms - start_ms) / 1000 / every_s) + 1):
        sample_ms = start_ms + step * every_s * 1000
        while position < len(batches) and batches[position][0][0] <= sample_ms:
            (_, batch_last), rows = batches[position]
            if int(rows["pu"].iloc[0]) != last_id:
                log.warning("%s depth: gap in update ids (pu %s after %s)", symbol, rows["pu"].iloc[0], last_id)
            for side, price, qty in zip(rows["side"], rows["price"], rows["qty"], strict=True):
                book.set(str(side), float(price), float(qty))
            last_id, position = int(batch_last), position + 1
        if book.top() is None:
            continue
        bids = sorted(book.bids.items(), reverse=True)[:BOOK_LEVELS]
        asks = sorted(book.asks.items())[:BOOK_LEVELS]
        out.append(BookSnapshot(pd.Timestamp(sample_ms, unit="ms", tz="UTC"), bids, asks))
    return out


def load_recorded(directory: Path, pairs: Sequence[str] | None = None) -> Recorded:
    """Read `<PAIR>_*.parquet|csv` files: 1m candle files as candles, trade files as trades.

    Pair names are normalised (`XRP-ETH` -> `XRPETH`); candle files of other timeframes are
    ignored. Trades need `trade_id` and `side` columns besides ts, price and quantity.
    """
    if not directory.is_dir():
        raise SourceError(f"recorded data directory does not exist: {directory}")
    wanted = None if pairs is None else {normalise_pair(p) for p in pairs}
    candles: dict[str, pd.DataFrame] = {}
    trades: dict[str, list[pd.DataFrame]] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".parquet", ".csv") or "_" not in path.stem:
            continue
        pair = normalise_pair(path.stem.split("_")[0])
        if wanted is not None and pair not in wanted:
            continue
        frame, where = read_table(path), str(path)
        kind = file_kind(frame)
        if kind == "candles":
            timeframe = infer_timeframe(path, coerce_timestamps(frame["ts"], where))
            if timeframe.duration.total_seconds() != BUCKET_S:
                continue
            if pair in candles:
                raise SourceError(f"pair {pair} has several 1m candle files in {directory}; keep one")
            candles[pair] = validate_candles(frame, timeframe, where).loc[:, list(CANDLE_FIELDS)]
        elif kind == "trades":
            trades.setdefault(pair, []).append(_recorded_trades(frame, where))
    missing = sorted((wanted or set()) - {*candles, *trades})
    if missing:
        raise SourceError(f"no 1m candles or trades for {missing} in {directory}")
    return Recorded(
        candles=candles,
        trades={p: pd.concat(f).sort_values("ts", kind="stable").reset_index(drop=True) for p, f in trades.items()},
    )


def _recorded_trades(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in ("trade_id", "side") if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{where}: trades need columns {missing} to be replayed")
    validate_trades(frame, where)
    out = frame.loc[:, ["ts", "trade_id", "side", "price", "quantity"]].copy()
    out["ts"] = coerce_timestamps(out["ts"], where)
    out["side"] = out["side"].astype(str).str.upper()
    return out
