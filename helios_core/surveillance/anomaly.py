"""Market-statistics anomaly detection, the pure part: features from 1-minute candles, the 3-sigma
fallback and the calibration of an IsolationForest's scores.

The features of one candle come from the 61 one-minute grid slots ending at it (the candle and the
60 minutes before it); a missing candle leaves its slot NaN, so every feature that needs it is NaN.
A value that cannot be computed (a zero price, volume or spread) is NaN, never invented, and a
vector holding a NaN is not scored. `MarketStats.update` (streaming) and `market_stats_batch`
(batch) both call `_vectors`, so they agree.

Unlike the plan's detector (docs: oracle-monitor-plan "DAY 5"), nothing here looks at the batch
being scored: the sigma model and the calibration are fitted once, on training data, and applied
to one sample at a time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from helios_core.surveillance.events import Severity

FloatArray = npt.NDArray[np.float64]

FEATURES: tuple[str, ...] = (
    "log_return_1m",
    "log_return_5m",
    "log_return_15m",
    "realised_vol_15m",
    "realised_vol_60m",
    "range_over_close",
    "log_volume_z_60m",
    "volume_ratio_5m_60m",
)
WINDOW = 61
"""Grid minutes each vector needs: the candle and the 60 before it."""
MINUTE_S = 60
_TINY = 1e-12  # a std or mean at or below this is treated as zero: the ratio is not defined

SIGMA_THRESHOLD = 3.0
SIGMA_HIGH = 4.0
DEPTH_EDGES = (0.5, 1.0, 2.0)
"""Calibration severity edges, in training-score standard deviations below the threshold."""


def _log_positive(x: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)


def _divide(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(den) > _TINY, num / np.where(np.abs(den) > _TINY, den, 1.0), np.nan)


def _vectors(close: FloatArray, high: FloatArray, low: FloatArray, volume: FloatArray) -> FloatArray:
    """Features of windows shaped (n, WINDOW), oldest first; returns (n, len(FEATURES))."""
    log_close = _log_positive(close)
    now = log_close[:, -1]
    returns = np.diff(log_close, axis=1)
    log_volume = _log_positive(volume)
    previous = log_volume[:, :-1]
    columns = (
        now - log_close[:, -2],
        now - log_close[:, -6],
        now - log_close[:, -16],
        np.sqrt(np.sum(returns[:, -15:] ** 2, axis=1)),
        np.sqrt(np.sum(returns**2, axis=1)),
        _divide(high[:, -1] - low[:, -1], np.where(close[:, -1] > 0, close[:, -1], np.nan)),
        _divide(log_volume[:, -1] - np.mean(previous, axis=1), np.std(previous, axis=1)),
        _divide(np.mean(volume[:, -5:], axis=1), np.mean(volume[:, -60:], axis=1)),
    )
    return np.stack(columns, axis=1)


def _epoch_seconds(ts: Any) -> npt.NDArray[np.int64]:
    values = np.asarray(ts)
    if values.dtype.kind == "M":
        return values.astype("datetime64[s]").astype(np.int64)
    if values.dtype.kind == "O":
        return np.array([int(t.timestamp()) for t in values], dtype=np.int64)
    return values.astype(np.int64)


def _minutes(seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if np.any(seconds % MINUTE_S):
        raise ValueError("candle times must fall on whole minutes")
    minutes = seconds // MINUTE_S
    if len(minutes) > 1 and np.any(np.diff(minutes) <= 0):
        raise ValueError("candle times must be strictly increasing")
    return minutes


def market_stats_batch(candles: Mapping[str, Any]) -> FloatArray:
    """One row of FEATURES per candle of `candles` (columns ts, open, high, low, close, volume of
    one pair, 1-minute, time order; a DataFrame will do). Rows of candles with fewer than
    WINDOW - 1 grid minutes before them are all NaN (warming up)."""
    minutes = _minutes(_epoch_seconds(candles["ts"]))
    out = np.full((len(minutes), len(FEATURES)), np.nan)
    if len(minutes) == 0:
        return out
    slot = minutes - minutes[0]
    grid = np.full((4, int(slot[-1]) + 1), np.nan)
    for row, name in enumerate(("close", "high", "low", "volume")):
        grid[row, slot] = np.asarray(candles[name], dtype=np.float64)
    if grid.shape[1] < WINDOW:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(grid, WINDOW, axis=1)
    vectors = _vectors(*windows)
    warm = slot >= WINDOW - 1
    out[warm] = vectors[slot[warm] - (WINDOW - 1)]
    return out


class MarketStats:
    """Streaming twin of `market_stats_batch` for one pair: feed each closed 1-minute candle."""

    def __init__(self) -> None:
        self._slots: deque[tuple[float, float, float, float]] = deque(maxlen=WINDOW)
        self._last: int | None = None
        self._seen = 0

    def update(
        self, ts: datetime, open: float, high: float, low: float, close: float, volume: float
    ) -> FloatArray | None:
        """The FEATURES vector after the candle opened at `ts` (UTC) closed; None while fewer
        than WINDOW grid minutes have passed. It may hold NaN (see the module docstring)."""
        del open  # part of the candle; no feature uses it
        seconds = int(ts.timestamp())
        if seconds % MINUTE_S:
            raise ValueError(f"candle time {ts.isoformat()} is not on a whole minute")
        minute = seconds // MINUTE_S
        step = 1 if self._last is None else minute - self._last
        if step <= 0:
            raise ValueError(f"candle time {ts.isoformat()} does not follow the previous candle")
        missing = (math.nan,) * 4
        for _ in range(min(step - 1, WINDOW)):
            self._slots.append(missing)
        self._slots.append((close, high, low, volume))
        self._last = minute
        self._seen += step
        if self._seen < WINDOW:
            return None
        window = np.array(self._slots, dtype=np.float64).T[:, None, :]
        vector: FloatArray = _vectors(*window)[0]
        return vector


def complete_rows(matrix: FloatArray) -> FloatArray:
    """The rows of a feature matrix that hold no NaN (the only rows that are scored or fitted)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix[np.all(np.isfinite(matrix), axis=1)]


def _ramp(depth: float) -> float:
    """Risk 50 at the anomaly line, +25 per unit of depth past it, clipped to 0..100."""
    return float(min(100.0, max(0.0, 50.0 + 25.0 * depth)))


@dataclass(frozen=True, slots=True)
class SigmaModel:
    """The 3-sigma fallback: per-feature mean and std fitted once on training rows. A feature
    whose training std is zero (std stored as 0.0) cannot give a z-score and is left out."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, matrix: FloatArray) -> SigmaModel:
        """Fit on the complete rows of a training matrix (n, features); needs two or more."""
        rows = complete_rows(matrix)
        if len(rows) < 2:
            raise ValueError(f"the sigma model needs at least 2 complete training rows, got {len(rows)}")
        std = np.std(rows, axis=0, ddof=1)
        std = np.where(std > _TINY, std, 0.0)
        return cls(tuple(float(v) for v in np.mean(rows, axis=0)), tuple(float(v) for v in std))

    def score(self, vector: Sequence[float] | FloatArray) -> float | None:
        """The largest |z| of one sample against the training statistics; None when the sample
        holds a NaN or no feature has a usable std."""
        x = np.asarray(vector, dtype=np.float64)
        if x.shape != (len(self.mean),):
            raise ValueError(f"expected a vector of {len(self.mean)} features, got shape {x.shape}")
        std = np.asarray(self.std)
        usable = std > 0
        if not np.all(np.isfinite(x)) or not np.any(usable):
            return None
        z = (x[usable] - np.asarray(self.mean)[usable]) / std[usable]
        return float(np.max(np.abs(z)))

    @staticmethod
    def anomalous(score: float) -> bool:
        return score > SIGMA_THRESHOLD

    @staticmethod
    def severity(score: float) -> Severity | None:
        """HIGH past 4 sigma, MEDIUM past 3 (the plan's rule), None when not anomalous."""
        if score > SIGMA_HIGH:
            return Severity.HIGH
        return Severity.MEDIUM if score > SIGMA_THRESHOLD else None

    @staticmethod
    def risk(score: float) -> float:
        """0..100: 50 at 3 sigma, 75 at 4, 100 from 5."""
        return _ramp(score - SIGMA_THRESHOLD)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Where an IsolationForest `score_samples` value (lower = more anomalous) becomes an
    anomaly: `threshold` is the training scores' `contamination` quantile, `spread` their std.

    Severity rule, by depth d = (threshold - score) / spread, for anomalies only (score below
    the threshold; otherwise None): LOW for d < 0.5, MEDIUM for d < 1, HIGH for d < 2, CRITICAL
    from 2. Risk: 50 at the threshold, +25 per unit of d, clipped to 0..100 (0 from d = -2).
    """

    threshold: float
    spread: float
    contamination: float

    @classmethod
    def fit(cls, scores: FloatArray, contamination: float = 0.05) -> Calibration:
        """Calibrate on the training samples' scores (finite values only)."""
        values = np.asarray(scores, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not 0 < contamination < 0.5:
            raise ValueError(f"contamination must be in (0, 0.5), got {contamination}")
        if len(values) < 2:
            raise ValueError("calibration needs at least 2 finite training scores")
        spread = float(np.std(values))
        if spread <= _TINY:
            raise ValueError("the training scores do not spread: a threshold would mean nothing")
        return cls(float(np.quantile(values, contamination)), spread, contamination)

    def depth(self, score: float) -> float:
        return (self.threshold - score) / self.spread

    def anomalous(self, score: float) -> bool:
        return score < self.threshold

    def severity(self, score: float) -> Severity | None:
        if not self.anomalous(score):
            return None
        depth = self.depth(score)
        low, medium, high = DEPTH_EDGES
        if depth < low:
            return Severity.LOW
        if depth < medium:
            return Severity.MEDIUM
        return Severity.HIGH if depth < high else Severity.CRITICAL

    def risk(self, score: float) -> float:
        return _ramp(self.depth(score))
