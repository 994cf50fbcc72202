"""Streaming candle aggregation: closed candles of one timeframe into a longer one.

The streaming twin of `helios_core.candles.resample`, with the same rules: a bucket is
emitted once it is complete in time (the bar that ends it arrived, a bar of a later bucket
arrived, or the clock passed its end), never if it started before the stream did, and a
bucket with missing constituents is still emitted. Book and reference values of the longer
candle are those at its close: the constituent that ends the bucket, else unknown.
"""

from __future__ import annotations

from helios_core.features.streaming import NAN, Bar
from helios_core.timeframes import Timeframe

_new_bar = tuple.__new__
_UNKNOWN_AT_CLOSE = (NAN,) * 5  # book_bid, book_ask, book_bid_qty, book_ask_qty, ref_close


class BarAggregator:
    """Folds `source` bars into `target` bars; `add` returns the bars it closed."""

    def __init__(self, source: Timeframe, target: Timeframe) -> None:
        if not source.divides(target) or target < source:
            raise ValueError(f"cannot build {target} bars from {source} bars")
        self.source, self.target = source.seconds, target.seconds
        self.first_ts: int | None = None
        self.current: list[float] | None = None  # ts, o, h, l, c, v, count, buy, last bar
        self.last: Bar | None = None

    def add(self, bar: Bar) -> list[Bar]:
        ts = bar.ts
        if self.first_ts is None:
            self.first_ts = ts
        bucket = ts - ts % self.target
        cur = self.current
        closed = []
        if cur is not None and bucket != cur[0]:
            closed = self._emit()
            cur = None
        if cur is None:
            self.current = [bucket, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count, bar.buy_volume]
        else:  # the comparisons `max` and `min` make, NaN included, without their calls
            if bar.high > cur[2]:
                cur[2] = bar.high
            if bar.low < cur[3]:
                cur[3] = bar.low
            cur[4] = bar.close
            cur[5] += bar.volume
            cur[6] += bar.trade_count  # NaN stays NaN: one unknown part makes the sum unknown
            cur[7] += bar.buy_volume
        self.last = bar
        if ts + self.source == bucket + self.target:
            closed += self._emit()
        return closed

    def close_until(self, now_ts: int) -> list[Bar]:
        """Emit the open bucket if the clock (epoch seconds) has passed its end."""
        if self.current is not None and now_ts >= int(self.current[0]) + self.target:
            return self._emit()
        return []

    def _emit(self) -> list[Bar]:
        cur, last = self.current, self.last
        self.current = None
        if cur is None or last is None:
            return []
        start = int(cur[0])
        if self.first_ts is not None and start < self.first_ts:
            return []  # the stream began inside this bucket: its open is unknown
        at_close = last.ts + self.source == start + self.target
        # tuple.__new__ skips the NamedTuple constructor's Python frame: 8 fields + 5 = all 13
        return [_new_bar(Bar, (start, *cur[1:], *(last[8:] if at_close else _UNKNOWN_AT_CLOSE)))]
