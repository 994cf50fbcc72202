"""History from the lake for the live engine's warm-up: closed bars of the base timeframe in time
order, built by the same code that builds the lake, so a warm-up candle is the candle the stream
would have built."""

from __future__ import annotations

import math
from datetime import timedelta

from helios_core.bars import STEP
from helios_core.candles import to_bars
from helios_core.features.streaming import Bar
from helios_core.timeframes import Timeframe, as_datetime
from helios_live.data.lake import Lake


def lake_bars(lake: Lake, pair: str, start: float, end: float, step: int = STEP) -> list[Bar]:
    """The lake's candles of `pair`, `step` seconds long (its 1m or 5m ones), that open at or
    after `start` and close by `end`."""
    timeframe = str(Timeframe.from_seconds(step))
    frame = lake.read_range("candles", pair, timeframe, as_datetime(start).date(), as_datetime(end).date())
    if frame.empty:
        return []
    opens = frame["ts"].to_numpy(dtype="datetime64[ns]").astype("int64") // 1_000_000_000
    keep = (opens >= start) & (opens + step <= end)
    return to_bars(frame.loc[keep].reset_index(drop=True))


def minutes(start: float, end: float) -> int:
    return max(0, math.ceil((end - start) / timedelta(minutes=1).total_seconds()))
