"""What the allocation reads: daily closes and quote volumes per pair, the model's views and the
targets in force, all as of one moment.

Daily bars are built from candles of any timeframe that divides a day (1m, 5m, 15m, 1h). Only
whole UTC days that ended at or before `as_of` are kept: a candle that opens inside such a day
closes by its end, so every candle used was closed by `as_of`, and the day still running at
`as_of` is left out entirely (its close would be an intraday price and its volume a fraction of
a day, both of which would skew the returns and the volume prior).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from helios_core.allocation.targets import Targets
from helios_core.allocation.views import View
from helios_core.trading.orders import require_aware

DAY = timedelta(days=1)
DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class AllocationData:
    """`closes` and `volumes`: one row per UTC day (indexed by the day's open, contiguous, a day
    without candles is NaN), one column per pair; a day's close is the close of its last candle
    and its volume the sum of volume x close over its candles (quote currency)."""

    as_of: datetime
    closes: pd.DataFrame
    volumes: pd.DataFrame
    views: Mapping[str, View] = field(default_factory=dict)
    previous: Targets | None = None

    def __post_init__(self) -> None:
        require_aware("as_of", self.as_of)
        if list(self.closes.columns) != list(self.volumes.columns):
            raise ValueError("closes and volumes must have the same pairs in the same order")
        if len(self.closes) and self.closes.index[-1] + DAY > pd.Timestamp(self.as_of):
            raise ValueError(f"closes hold a day that had not ended by {self.as_of.isoformat()}")

    @property
    def pairs(self) -> list[str]:
        return [str(p) for p in self.closes.columns]


def last_whole_day(as_of: datetime) -> pd.Timestamp:
    """The open of the newest UTC day that ended at or before `as_of`."""
    require_aware("as_of", as_of)
    return pd.Timestamp(as_of).tz_convert("UTC").floor("D") - pd.Timedelta(DAY)


def _day_bars(frame: pd.DataFrame, end: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    if frame.empty:
        return pd.Series(dtype=float), pd.Series(dtype=float)
    ts = pd.to_datetime(frame["ts"])
    # naive means UTC (the lake's contract); aware is converted. Then plain UTC nanoseconds.
    naive = ts if ts.dt.tz is None else ts.dt.tz_convert(None)
    ns = naive.to_numpy().astype("datetime64[ns]").view(np.int64)
    close = frame["close"].to_numpy(dtype=float)
    volume = frame["volume"].to_numpy(dtype=float)
    day = ns // DAY_NS
    # a candle without a close is no candle; the rest stop at the last day ended by as_of
    keep = np.isfinite(close) & (day <= end.value // DAY_NS)
    if not np.all(np.diff(ns) >= 0):
        order = np.argsort(ns, kind="stable")
        keep, ns, close, volume, day = keep[order], ns[order], close[order], volume[order], day[order]
    day, close, quote = day[keep], close[keep], (volume * close)[keep]
    if not len(day):
        return pd.Series(dtype=float), pd.Series(dtype=float)
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], len(day)] - 1
    counted = np.add.reduceat(np.isfinite(quote).astype(np.int64), starts)
    summed = np.add.reduceat(np.where(np.isfinite(quote), quote, 0.0), starts)
    index = pd.DatetimeIndex(day[starts] * DAY_NS, tz="UTC")
    # a day whose volumes are all missing stays missing, not a day of zero volume
    return pd.Series(close[ends], index=index), pd.Series(np.where(counted > 0, summed, np.nan), index=index)


def daily_frames(candles: Mapping[str, pd.DataFrame], as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily closes and quote volumes from candles (columns ts, close, volume; ts = open, UTC),
    using only the whole UTC days ended by `as_of`. Columns are the pairs, sorted; the index runs
    contiguously from the first day any pair has to the last whole day with data."""
    end = last_whole_day(as_of)
    pairs = sorted(candles)
    closes: dict[str, pd.Series] = {}
    volumes: dict[str, pd.Series] = {}
    for pair in pairs:
        closes[pair], volumes[pair] = _day_bars(candles[pair], end)
    found = [s.index for s in closes.values() if len(s)]
    if not found:
        empty = pd.DataFrame(columns=pairs, index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        return empty, empty.copy()
    first = min(i.min() for i in found)
    last = max(i.max() for i in found)
    days = pd.date_range(first, last, freq="D")
    close_frame = pd.DataFrame({p: closes[p].reindex(days) for p in pairs}, index=days, dtype=float)
    volume_frame = pd.DataFrame({p: volumes[p].reindex(days) for p in pairs}, index=days, dtype=float)
    return close_frame, volume_frame
