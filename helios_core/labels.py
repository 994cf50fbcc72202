"""Training labels: the design's look-ahead label and a triple-barrier label.

Labels look into the future by definition; they are targets, never features. A sample
whose future is not in the data gets no label (null), never a made-up one.
Encoding as in the design (section 11.1): 0 = BUY, 1 = SELL, 2 = HOLD.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from helios_core.timeframes import Timeframe


class Label(IntEnum):
    BUY = 0
    SELL = 1
    HOLD = 2


@dataclass(frozen=True)
class Horizon:
    """How far a label looks ahead: `candles` x `timeframe` (default 12 x 5m, one hour)."""

    timeframe: str = "5m"
    candles: int = 12

    @property
    def horizon(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=Timeframe.parse(self.timeframe).seconds * self.candles)


@dataclass(frozen=True)
class LookaheadConfig(Horizon):
    """BUY if the close one horizon later is more than `up` above, SELL if more than `down`
    below, else HOLD. Defaults: 12 x 5m and 2% (design 11.1)."""

    up: float = 0.02
    down: float = 0.02


@dataclass(frozen=True)
class BarrierConfig(Horizon):
    """Take-profit at close x exp(+k_up s), stop-loss at close x exp(-k_down s), where s is the
    per-candle volatility at t scaled to the horizon (s = vol x sqrt(candles in the horizon));
    time limit = the horizon. Both barriers touched within one candle counts as the stop
    (conservative)."""

    k_up: float = 2.0
    k_down: float = 2.0


def _price_at(times: pd.Series, candles: pd.DataFrame, tf: Timeframe) -> np.ndarray:
    """Close of the candle that closes exactly at each time; NaN if that candle is missing."""
    closes = pd.Series(candles["close"].to_numpy(), index=candles["ts"] + tf.duration)
    prices: np.ndarray = closes.reindex(pd.DatetimeIndex(times)).to_numpy(dtype=float)
    return prices


def lookahead_outcome(entry: float, future: float, config: LookaheadConfig) -> tuple[Label, float]:
    """The look-ahead label of one decision, known once the close one horizon later is: the
    live service's record of what actually happened. Same rule as `lookahead_labels`."""
    if not (entry > 0 and future > 0):
        raise ValueError(f"prices must be positive, got entry {entry} and future {future}")
    fwd = future / entry - 1.0
    if fwd > config.up:
        return Label.BUY, fwd
    if fwd < -config.down:
        return Label.SELL, fwd
    return Label.HOLD, fwd


def lookahead_labels(candles: pd.DataFrame, timeframe: Timeframe, config: LookaheadConfig) -> pd.DataFrame:
    """One row per candle close t: `fwd_return` over the horizon and `label` (null when the
    candle closing at t + horizon is not in the data)."""
    t = candles["ts"] + timeframe.duration
    now = candles["close"].to_numpy(dtype=float)
    future = _price_at(t + config.horizon, candles, timeframe)
    fwd = future / now - 1.0
    label = np.where(fwd > config.up, Label.BUY, np.where(fwd < -config.down, Label.SELL, Label.HOLD))
    return pd.DataFrame(
        {
            "t": t.to_numpy(),
            "fwd_return": fwd,
            "label": pd.array(np.where(np.isnan(fwd), pd.NA, label), dtype="Int8"),
            "label_end": (t + config.horizon).to_numpy(),
        }
    )


def triple_barrier_labels(
    candles: pd.DataFrame, timeframe: Timeframe, volatility: pd.Series, config: BarrierConfig
) -> pd.DataFrame:
    """One row per candle close t: the first barrier the following candles touch within the
    horizon. `volatility` is per-candle (aligned with `candles`), known at t. Null when the
    volatility is unknown, or when no barrier was touched and the horizon runs past the data.
    """
    n = len(candles)
    close_times = candles["ts"] + timeframe.duration
    t = close_times.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))  # UTC, tz dropped
    close = candles["close"].to_numpy(dtype=float)
    high, low = candles["high"].to_numpy(dtype=float), candles["low"].to_numpy(dtype=float)
    steps = int(config.horizon / timeframe.duration)  # input candles within the horizon
    scale = volatility.to_numpy(dtype=float) * np.sqrt(steps)
    upper, lower = close * np.exp(config.k_up * scale), close * np.exp(-config.k_down * scale)
    deadline = t + np.timedelta64(config.horizon.value, "ns")
    outcome = np.full(n, -1)  # -1: nothing touched yet
    touched_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    for k in range(1, steps + 1):
        if k >= n:
            break
        ahead = np.arange(n - k)
        within = (t[k:] <= deadline[:-k]) & (outcome[:-k] == -1)
        hit_down = within & (low[k:] <= lower[:-k])
        hit_up = within & (high[k:] >= upper[:-k]) & ~hit_down
        outcome[ahead[hit_down]] = Label.SELL
        outcome[ahead[hit_up]] = Label.BUY
        touched = hit_down | hit_up
        touched_at[ahead[touched]] = t[k:][touched]
    data_end = t[-1] if n else np.datetime64("NaT")
    timed_out = (outcome == -1) & (deadline <= data_end)
    outcome[timed_out] = Label.HOLD
    unknown = (outcome == -1) | ~np.isfinite(scale)
    return pd.DataFrame(
        {
            "t": close_times.to_numpy(),
            "barrier_up": upper,
            "barrier_down": lower,
            "barrier_label": pd.array(np.where(unknown, pd.NA, outcome), dtype="Int8"),
            "barrier_touched_at": pd.to_datetime(touched_at).tz_localize("UTC"),
        }
    )
