"""History from the lake for the live engine's warm-up: closed 1m bars in time order, built by
the same code that builds the lake, so a warm-up candle is the candle the stream would have built."""

from __future__ import annotations

import math
from datetime import timedelta

from helios_core.candles import to_bars
from helios_core.features.streaming import Bar
from helios_core.timeframes import as_datetime
from helios_live.data.lake import Lake


def lake_bars(lake: Lake, pair: str, start: float, end: float) -> list[Bar]:
    """The lake's 1m candles of `pair` that open at or after `start` and close by `end`."""
    frame = lake.read_range("candles", pair, "1m", as_datetime(start).date(), as_datetime(end).date())
    if frame.empty:
        return []
    opens = frame["ts"].to_numpy(dtype="datetime64[ns]").astype("int64") // 1_000_000_000
    keep = (opens >= start) & (opens + 60 <= end)
    return to_bars(frame.loc[keep].reset_index(drop=True))


def minutes(start: float, end: float) -> int:
    return max(0, math.ceil((end - start) / timedelta(minutes=1).total_seconds()))
