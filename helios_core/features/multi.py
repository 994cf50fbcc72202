"""The multi-timeframe vector: blocks for 1m, 5m and 15m assembled at each decision time.

A decision is taken at the close of a base-timeframe candle (the finest timeframe the pair
has). At decision time t the block of timeframe tf holds the features of the latest tf
candle that closed at or before t, provided that candle closed after t - tf: a candle that
should have closed by now and did not (a gap) makes the block stale, hence invalid. No
partial candle and no candle closing after t can reach the vector.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helios_core.features.aggregate import BarAggregator
from helios_core.features.spec import BLOCK, NAMES, TIMEFRAMES
from helios_core.features.streaming import NAN, Bar, StreamingBlock
from helios_core.timeframes import Timeframe

NS = 1_000_000_000


def assemble(
    blocks: dict[str, tuple[pd.Series, pd.DataFrame]],
    decision_times: pd.Series,
    timeframes: tuple[str, ...] = TIMEFRAMES,
) -> pd.DataFrame:
    """Batch assembly. `blocks[tf]` = (candle open times, block features); a timeframe with no
    block is unavailable (all NaN). Returns one row per decision time, columns `vector_names`."""
    times = pd.to_datetime(decision_times, utc=True).astype("datetime64[ns, UTC]").reset_index(drop=True)
    left = pd.DataFrame({"t": times})
    parts = []
    for tf_text in timeframes:
        names = [f"{tf_text}.{name}" for name in NAMES]
        if tf_text not in blocks:
            parts.append(pd.DataFrame(np.nan, index=left.index, columns=names))
            continue
        ts, features = blocks[tf_text]
        tf = Timeframe.parse(tf_text)
        closes = pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]").reset_index(drop=True) + tf.duration
        right = features.reset_index(drop=True).set_axis(names, axis=1).assign(close_time=closes)
        merged = pd.merge_asof(left, right, left_on="t", right_on="close_time", direction="backward")
        stale = ~(merged["close_time"] > merged["t"] - tf.duration)
        block = merged[names]
        block.loc[stale.to_numpy()] = np.nan
        parts.append(block)
    out = pd.concat(parts, axis=1)
    out.index = pd.Index(times, name="t")
    return out


def emit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a model receives: values with invalid entries set to 0.0, and the validity mask."""
    mask = np.isfinite(values)
    return np.where(mask, values, 0.0), mask


class StreamingVector:
    """Per-pair streaming state: closed candles in, the vector at each decision time out.

    `on_candle(tf, bar)` folds a closed candle of one timeframe into its block; `vector(t)`
    assembles the blocks at decision time t (epoch seconds) with the staleness rule above.
    """

    def __init__(self, timeframes: tuple[str, ...] = TIMEFRAMES) -> None:
        self.timeframes = timeframes
        self.steps = [Timeframe.parse(tf).seconds for tf in timeframes]
        self.blocks = [StreamingBlock(Timeframe.parse(tf)) for tf in timeframes]
        self.latest: list[list[float]] = [[NAN] * BLOCK for _ in timeframes]
        self.closed_at: list[int] = [-(2**62)] * len(timeframes)

    def on_candle(self, tf: str, bar: Bar) -> None:
        self.on_candle_at(self.timeframes.index(tf), bar)

    def on_candle_at(self, i: int, bar: Bar) -> None:
        """`on_candle` by position in `timeframes`, for the hot path."""
        self.latest[i] = self.blocks[i].update(bar)
        self.closed_at[i] = bar.ts + self.steps[i]

    def vector(self, t: int) -> list[float]:
        out: list[float] = []
        for i, step in enumerate(self.steps):
            closed = self.closed_at[i]
            out.extend(self.latest[i] if t - step < closed <= t else [NAN] * BLOCK)
        return out


class StreamingFeatures:
    """Base-timeframe bars in, the full vector out at each bar's close.

    `base` is the pair's finest timeframe, the one its candles come in (by default the first of
    `timeframes`: 1m). Blocks of finer timeframes are never updated, so they stay NaN (masked),
    as in the batch assembly of a pair that has no such candles; longer timeframes are
    aggregated here with `BarAggregator`, the streaming twin of the resampler that builds the
    lake's longer candles.
    """

    def __init__(self, timeframes: tuple[str, ...] = TIMEFRAMES, base: str | None = None) -> None:
        base = base or timeframes[0]
        if base not in timeframes:
            raise ValueError(f"base timeframe {base} is not one of {timeframes}")
        tf = Timeframe.parse(base)
        self.base, self.timeframes = base, timeframes
        self.state = StreamingVector(timeframes)
        self.index = timeframes.index(base)
        self.aggregators = [
            (i, BarAggregator(tf, Timeframe.parse(text)))
            for i, text in enumerate(timeframes)
            if Timeframe.parse(text) > tf
        ]
        self.step = tf.seconds

    def update(self, bar: Bar) -> list[float]:
        """Fold in a closed base bar; return the vector at its close time (NaN = invalid)."""
        state = self.state
        for i, aggregator in self.aggregators:
            for closed in aggregator.add(bar):  # every bar it returns has closed by now
                state.on_candle_at(i, closed)
        state.on_candle_at(self.index, bar)
        return state.vector(bar.ts + self.step)
