"""Helpers shared by the feature tests: sample candles, batch and streaming runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helios_core.candles import resample, to_bars, validate_candles
from helios_core.features.batch import block_features
from helios_core.features.multi import StreamingFeatures, assemble
from helios_core.timeframes import Timeframe
from tests.conftest import sample

M1, M5, M15 = (Timeframe.parse(t) for t in ("1m", "5m", "15m"))
BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"


def one_minute(name: str = BTC) -> pd.DataFrame:
    return validate_candles(sample(name), M1, name)


def batch_vectors(candles: pd.DataFrame) -> pd.DataFrame:
    """The batch path exactly as the features asset takes it: resample, blocks, assemble."""
    end, start = candles["ts"].iloc[-1] + M1.duration, candles["ts"].iloc[0]
    frames = {"1m": candles, "5m": resample(candles, M1, M5, end, start), "15m": resample(candles, M1, M15, end, start)}
    blocks = {tf: (f["ts"], block_features(f, Timeframe.parse(tf))) for tf, f in frames.items()}
    return assemble(blocks, candles["ts"] + M1.duration)


def streaming_vectors(candles: pd.DataFrame) -> np.ndarray:
    features = StreamingFeatures()
    return np.array([features.update(bar) for bar in to_bars(candles)])


def disagreements(a: np.ndarray, b: np.ndarray, rel: float = 1e-9, abs_: float = 1e-12) -> tuple[int, int]:
    """(entries whose validity differs, valid entries differing beyond rel OR abs tolerance)."""
    mask_diff = int((np.isnan(a) != np.isnan(b)).sum())
    both = ~np.isnan(a) & ~np.isnan(b)
    err = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        bad = both & (err > abs_) & (err > rel * np.abs(b))
    return mask_diff, int(bad.sum())
