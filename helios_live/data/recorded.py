"""Recorded market data as one timeline of typed events: what the exchange simulator streams and
what a replay feeds the kernel directly, built once so that both see the same market.

Pure apart from the loaders, which read recordings from disk: the lake's candles of one base
timeframe, 1m or 5m (`from_lake`), the sample-data folder with candles and trades
(`load_recorded`) and Binance diff-depth CSVs rebuilt into order books
(`books_from_binance_depth`). Times are epoch seconds; a trade's time is its recorded time to
the millisecond, as an exchange stamps it.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from helios_core.candles import coerce_timestamps, validate_candles, validate_trades
from helios_core.errors import DataValidationError, SourceError
from helios_core.market import Book, Bucket, MarketData, MarketSummary, TradeTick
from helios_core.orderbook import OrderBook
from helios_core.pairs import normalise_pair
from helios_core.timeframes import Timeframe, as_datetime
from helios_live.data.lake import Lake
from helios_live.data.sources.file import file_kind, infer_timeframe, read_table

log = logging.getLogger(__name__)

BUCKET_S = 60  # the default base candle: 1m
BOOK_LEVELS = 40
CANDLE_FIELDS = ("ts", "open", "high", "low", "close", "volume")
DAY_S = 86_400.0
TRAILING_S = 120.0  # summaries go on this long after the last event (1m), so the last candle closes
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
# At one instant a candle that just closed goes before trades stamped with that instant
# (they belong to the next candle); books sit between; summaries come last.
_BUCKET, _BOOK, _TRADE, _SUMMARY = range(4)


@dataclass
class Recorded:
    """What a replay knows: candles of one base `timeframe` (1m or 5m) and trades per pair
    (frames in Helios schemas)."""

    candles: dict[str, pd.DataFrame] = field(default_factory=dict)
    trades: dict[str, pd.DataFrame] = field(default_factory=dict)
    timeframe: str = "1m"

    @property
    def step(self) -> int:
        """Seconds of one of its candles."""
        return Timeframe.parse(self.timeframe).seconds

    @property
    def trailing_s(self) -> float:
        """How long a replay goes on after its last event, so that the candle of its last trade
        closes too: `TRAILING_S` at 1m, a candle longer at 5m."""
        return TRAILING_S + self.step - BUCKET_S


@dataclass(frozen=True, slots=True)
class Timed:
    """One event of a timeline, due at `at` (epoch seconds): a candle when it closes, a trade
    or a book at its own time, a summary at its heartbeat."""

    at: float
    event: MarketData


def epoch_seconds(ts: datetime | pd.Timestamp) -> float:
    """Seconds since the Unix epoch of a timezone-aware instant."""
    return float((pd.Timestamp(ts) - _EPOCH).total_seconds())


def _ms(stamps: pd.Series) -> list[float]:
    """Epoch seconds to the millisecond (truncated, as an exchange's stamps are)."""
    ns = stamps.dt.as_unit("ns").astype("int64").to_numpy()
    return (ns // 1_000_000 / 1000).tolist()  # type: ignore[no-any-return]


def _seconds(ts: pd.Series) -> np.ndarray:
    values: np.ndarray = (ts - _EPOCH).dt.total_seconds().to_numpy(dtype="float64")
    return values


def trade_ticks(pair: str, trades: pd.DataFrame) -> list[TradeTick]:
    """A tick per recorded trade (ts, trade_id, side BUY/SELL, price, quantity)."""
    rows = zip(_ms(trades["ts"]), trades["trade_id"], trades["side"], trades["price"], trades["quantity"], strict=True)
    return [
        TradeTick(pair, ts, float(price), float(quantity), str(side).upper() == "BUY", str(trade_id))
        for ts, trade_id, side, price, quantity in rows
    ]


def buckets(pair: str, candles: pd.DataFrame, period: int = BUCKET_S) -> list[Bucket]:
    """A bucket of `period` seconds (the candles' own) per recorded candle."""
    starts = (candles["ts"].dt.as_unit("ns").astype("int64") // 1_000_000_000).tolist()
    columns = (candles[c].tolist() for c in ("open", "high", "low", "close", "volume"))
    return [
        Bucket(pair, int(start), period, float(o), float(h), float(low), float(c), float(v))
        for start, o, h, low, c, v in zip(starts, *columns, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class SummaryFigures:
    """What was known of a pair at an instant: the last price, the best bid and ask of the latest
    book, and the 24 h high, low, base volume and previous close (None where nothing was known
    24 h earlier: left out rather than made up)."""

    last: float
    bid: float | None
    ask: float | None
    high: float
    low: float
    base_volume: float
    previous_close: float | None


@dataclass(frozen=True)
class _Known:
    at: np.ndarray  # when each price became known, non-decreasing epoch seconds
    price: np.ndarray
    high: np.ndarray
    low: np.ndarray
    cum_volume: np.ndarray  # leading 0, so a window's volume is one subtraction


class MarketSummaries:
    """A pair's summary figures at a simulated instant, from what was known of it then.

    Prices come from trades where a pair has them, else from closed candles; bid and ask
    from the latest book where the pair has books. High, low and volume cover the last 24 h.
    """

    def __init__(self, data: Recorded, books: Mapping[str, Sequence[Book]] | None = None) -> None:
        self._known: dict[str, _Known] = {}
        for pair in {*data.trades, *data.candles}:
            trades = data.trades.get(pair)
            if trades is not None and not trades.empty:
                prices = trades["price"].to_numpy(dtype="float64")
                at, high, low, volume = _seconds(trades["ts"]), prices, prices, trades["quantity"]
            elif pair in data.candles and not data.candles[pair].empty:
                candles = data.candles[pair]
                prices = candles["close"].to_numpy(dtype="float64")
                at = _seconds(candles["ts"]) + data.step
                high, low, volume = candles["high"].to_numpy(), candles["low"].to_numpy(), candles["volume"]
            else:
                continue
            cum = np.concatenate([[0.0], np.cumsum(volume.to_numpy(dtype="float64"))])
            self._known[pair] = _Known(at, prices, np.asarray(high, "float64"), np.asarray(low, "float64"), cum)
        self._books = {pair: list(snaps) for pair, snaps in (books or {}).items()}
        self._book_at = {pair: [b.ts or 0.0 for b in snaps] for pair, snaps in self._books.items()}

    @property
    def pairs(self) -> list[str]:
        """Pairs with prices to summarise."""
        return sorted(self._known)

    def figures(self, pair: str, at: float) -> SummaryFigures | None:
        """The figures of `pair` at epoch `at`, or None while nothing is known of its prices."""
        known = self._known.get(pair)
        if known is None:
            return None
        end = int(np.searchsorted(known.at, at, side="right"))
        if end == 0:
            return None
        begin = int(np.searchsorted(known.at, at - DAY_S, side="right"))
        last = float(known.price[end - 1])
        book = self._book(pair, at)
        top = book is not None and book.bids and book.asks
        return SummaryFigures(
            last=last,
            bid=book.bids[0][0] if top and book is not None else None,
            ask=book.asks[0][0] if top and book is not None else None,
            high=float(known.high[begin:end].max()) if begin < end else last,
            low=float(known.low[begin:end].min()) if begin < end else last,
            base_volume=float(known.cum_volume[end] - known.cum_volume[begin]),
            previous_close=float(known.price[begin - 1]) if begin > 0 else None,
        )

    def summary(self, pair: str, at: float) -> MarketSummary | None:
        figures = self.figures(pair, at)
        if figures is None:
            return None
        # Stamped to the millisecond, as the exchange writes `created`.
        return MarketSummary(pair, round(at, 3), figures.last, figures.bid, figures.ask)

    def _book(self, pair: str, at: float) -> Book | None:
        if pair not in self._books:
            return None
        index = bisect.bisect_right(self._book_at[pair], at)
        return self._books[pair][index - 1] if index else None


def earliest(data: Recorded, books: Mapping[str, Sequence[Book]] | None = None) -> datetime | None:
    """The first timestamp anywhere in the recording (a candle's open time counts), or None if empty."""
    frames = (*data.trades.values(), *data.candles.values())
    stamps = [epoch_seconds(frame["ts"].min()) for frame in frames if not frame.empty]
    stamps += [snapshots[0].ts or 0.0 for snapshots in (books or {}).values() if snapshots]
    return as_datetime(min(stamps)) if stamps else None


def timeline(
    data: Recorded,
    books: Mapping[str, Sequence[Book]] | None = None,
    *,
    start: float,
    summary_every_s: float | None = 10.0,
) -> list[Timed]:
    """Every trade, closed candle and book of every pair from `start` on, and a summary of each
    priced pair every `summary_every_s` after `start` (None: no summaries), merged in the
    order they become due. Summaries go on `data.trailing_s` past the last event.

    At one instant: candles, then books, then trades, then summaries (pairs in name order),
    each kind in recorded order.
    """
    entries: list[tuple[float, int, int, MarketData]] = []
    for pair, trades in data.trades.items():
        entries += [(t.ts, _TRADE, 0, t) for t in trade_ticks(pair, trades)]
    for pair, candles in data.candles.items():
        entries += [(b.start + data.step, _BUCKET, 0, b) for b in buckets(pair, candles, data.step)]
    for snapshots in (books or {}).values():
        entries += [(b.ts or 0.0, _BOOK, 0, b) for b in snapshots]
    entries = [e for e in entries if e[0] >= start]
    entries.sort(key=lambda e: (e[0], e[1]))  # stable: recorded order within a tie
    if summary_every_s is not None and entries:
        if not summary_every_s > 0:
            raise ValueError(f"summary_every_s must be positive, got {summary_every_s}")
        summaries = MarketSummaries(data, books)
        end = entries[-1][0] + data.trailing_s
        beats: list[tuple[float, int, int, MarketData]] = []
        first = max(1, math.ceil((entries[0][0] - start) / summary_every_s))  # nothing is known before
        for k in range(first, math.floor((end - start) / summary_every_s) + 1):
            at = start + k * summary_every_s
            for order, pair in enumerate(summaries.pairs):
                summary = summaries.summary(pair, at)
                if summary is not None:
                    beats.append((at, _SUMMARY, order, summary))
        entries = sorted(entries + beats, key=lambda e: (e[0], e[1], e[2]))
    return [Timed(at, event) for at, _, _, event in entries]


def books_from_binance_depth(snapshot_csv: Path, updates_csv: Path, pair: str, every_s: float = 1.0) -> list[Book]:
    """Rebuild a pair's book from a Binance depth snapshot and diff updates, sampled every `every_s` s.

    Updates already contained in the snapshot (`last_update_id` at or below its id) are
    skipped, as Binance prescribes. A break in the `pu` chain is logged, not fatal: the
    shared recordings are excerpts. Samples where a side is empty or the book is crossed
    are left out, so every snapshot has best bid < best ask. At most 40 levels a side.
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
    out: list[Book] = []
    position = 0
    for step in range(math.ceil((end_ms - start_ms) / 1000 / every_s) + 1):
        sample_ms = start_ms + round(step * every_s * 1000)
        while position < len(batches) and batches[position][0][0] <= sample_ms:
            (_, batch_last), rows = batches[position]
            if int(rows["pu"].iloc[0]) != last_id:
                log.warning("%s depth: gap in update ids (pu %s after %s)", symbol, rows["pu"].iloc[0], last_id)
            for side, price, qty in zip(rows["side"], rows["price"], rows["qty"], strict=True):
                book.set(str(side), float(price), float(qty))
            last_id, position = int(batch_last), position + 1
        if book.top() is None:
            continue
        bids = tuple(sorted(book.bids.items(), reverse=True)[:BOOK_LEVELS])
        asks = tuple(sorted(book.asks.items())[:BOOK_LEVELS])
        out.append(Book(symbol, sample_ms / 1000, bids, asks))
    return out


def from_lake(lake: Lake, pairs: Sequence[str], first: date, last: date, timeframe: str = "1m") -> Recorded:
    """The lake's `timeframe` candles (the base: 1m, or 5m for a 5m pair) of `pairs` for the days
    `first` .. `last` (inclusive), as a recording; a pair without any is left out."""
    candles = {}
    for pair in pairs:
        frame = lake.read_range("candles", pair, timeframe, first, last)
        if not frame.empty:
            candles[pair] = frame.loc[:, list(CANDLE_FIELDS)].reset_index(drop=True)
    return Recorded(candles=candles, timeframe=timeframe)


def load_recorded(directory: Path, pairs: Sequence[str] | None = None, timeframe: str = "1m") -> Recorded:
    """Read `<PAIR>_*.parquet|csv` files: candle files of `timeframe` (the base: 1m, or 5m) as
    candles, trade files as trades.

    Pair names are normalised (`XRP-ETH` -> `XRPETH`); candle files of other timeframes are
    ignored. Trades need `trade_id` and `side` columns besides ts, price and quantity.
    """
    step = Timeframe.parse(timeframe).seconds
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
            found = infer_timeframe(path, coerce_timestamps(frame["ts"], where))
            if found.seconds != step:
                continue
            if pair in candles:
                raise SourceError(f"pair {pair} has several {timeframe} candle files in {directory}; keep one")
            candles[pair] = validate_candles(frame, found, where).loc[:, list(CANDLE_FIELDS)]
        elif kind == "trades":
            trades.setdefault(pair, []).append(_recorded_trades(frame, where))
    missing = sorted((wanted or set()) - {*candles, *trades})
    if missing:
        raise SourceError(f"no {timeframe} candles or trades for {missing} in {directory}")
    return Recorded(
        candles=candles,
        trades={p: pd.concat(f).sort_values("ts", kind="stable").reset_index(drop=True) for p, f in trades.items()},
        timeframe=timeframe,
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
