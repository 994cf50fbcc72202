"""History for the live engine: warm-up from the lake, holes filled from the exchange's REST API.

Both return closed 1m bars in time order, built by the same code that builds the lake
(`trades_to_candles`), so a backfilled candle is the candle the stream would have built.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd

from helios_core.candles import to_bars, trades_to_candles
from helios_core.features.streaming import Bar
from helios_core.timeframes import Timeframe
from helios_live.clock import as_datetime
from helios_live.data.lake import Lake
from helios_live.data.sources.valr import ValrRestSource

ONE_MINUTE = Timeframe.parse("1m")


def lake_bars(lake: Lake, pair: str, start: float, end: float) -> list[Bar]:
    """The lake's 1m candles of `pair` that open at or after `start` and close by `end`."""
    frame = lake.read_range("candles", pair, "1m", as_datetime(start).date(), as_datetime(end).date())
    if frame.empty:
        return []
    opens = frame["ts"].to_numpy(dtype="datetime64[ns]").astype("int64") // 1_000_000_000
    keep = (opens >= start) & (opens + 60 <= end)
    return to_bars(frame.loc[keep].reset_index(drop=True))


def rest_bars(source: ValrRestSource, pair: str, start: float, end: float, from_trades: bool) -> list[Bar]:
    """Closed 1m candles in `[start, end)` from the REST API: built from the trade history
    (exact, with trade counts and taker volume) or the exchange's buckets (OHLCV only)."""
    first, last = as_datetime(start), as_datetime(end)
    if from_trades:
        trades = source.fetch_trades(pair, first, last)
        frame = trades_to_candles(trades, ONE_MINUTE, pd.Timestamp(last))
    else:
        frame = source.fetch_candles(pair, first, last).candles
    return to_bars(frame)


def minutes(start: float, end: float) -> int:
    return max(0, math.ceil((end - start) / timedelta(minutes=1).total_seconds()))
