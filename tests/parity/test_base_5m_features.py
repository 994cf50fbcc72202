"""Batch and streaming features agree on a pair whose base timeframe is 5m: the 2018 Binance
pairs, whose 1m block is masked (they have no 1m candles) and whose 15m block is aggregated
from the 5m candles, as the lake's resampler builds it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helios_core.candles import resample, to_bars, validate_candles
from helios_core.features.batch import block_features
from helios_core.features.multi import StreamingFeatures, assemble
from helios_core.features.spec import BLOCK, SPECS, vector_names
from tests.conftest import sample
from tests.features_support import M5, M15, disagreements

PAIRS = ("ADA-BTC", "ETH-BTC", "LTC-BTC", "XMR-BTC")
CANDLE_FEATURES = [i for i, s in enumerate(SPECS) if s.needs == "candles"]


def _candles(pair: str) -> pd.DataFrame:
    name = f"{pair}_5m_2018-01.parquet"
    return validate_candles(sample(name), M5, name)


def batch_5m(candles: pd.DataFrame) -> pd.DataFrame:
    """The features asset's path for a 5m pair: 5m and resampled 15m blocks, no 1m block."""
    end, start = candles["ts"].iloc[-1] + M5.duration, candles["ts"].iloc[0]
    m15 = resample(candles, M5, M15, end, start)
    blocks = {"5m": (candles["ts"], block_features(candles, M5)), "15m": (m15["ts"], block_features(m15, M15))}
    return assemble(blocks, candles["ts"] + M5.duration)


def stream_5m(candles: pd.DataFrame) -> np.ndarray:
    features = StreamingFeatures(base="5m")
    return np.array([features.update(bar) for bar in to_bars(candles)])


@pytest.mark.parametrize("pair", PAIRS)
def test_streaming_on_5m_candles_equals_the_batch_assembly(pair: str) -> None:
    candles = _candles(pair)
    batch, stream = batch_5m(candles), stream_5m(candles)
    assert stream.shape == batch.shape == (len(candles), 3 * BLOCK)
    assert disagreements(stream, batch.to_numpy()) == (0, 0)  # (validity differs, values differ)
    assert np.isnan(stream[:, :BLOCK]).all()  # no 1m candles: the 1m block is never valid
    for block in (1, 2):  # every candle feature of the 5m and 15m blocks is compared somewhere
        valid = np.isfinite(stream[:, block * BLOCK : (block + 1) * BLOCK]).sum(axis=0)
        assert (valid[CANDLE_FEATURES] > 1000).all(), vector_names()[block * BLOCK]


def test_the_vector_is_stamped_at_each_5m_close() -> None:
    candles = _candles("ETH-BTC").head(400)
    batch = batch_5m(candles)
    assert (batch.index == candles["ts"] + M5.duration).all()
    features = StreamingFeatures(base="5m")
    assert features.step == 300
    for bar in to_bars(candles):
        features.update(bar)
    assert features.state.closed_at[1] == to_bars(candles)[-1].ts + 300  # the 5m block's newest close


def test_a_base_outside_the_vector_is_refused() -> None:
    with pytest.raises(ValueError, match="base timeframe 1h"):
        StreamingFeatures(base="1h")
