"""The streaming aggregator builds the same 5m/15m candles as the batch resampler."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.candles import resample, to_bars, validate_candles
from helios_core.features.aggregate import BarAggregator
from helios_core.features.streaming import Bar
from tests.features_support import M1, M5, M15


def stream(candles: pd.DataFrame, target) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    aggregator = BarAggregator(M1, target)
    out = [closed for bar in to_bars(candles) for closed in aggregator.add(bar)]
    return pd.DataFrame([bar[:6] for bar in out], columns=["ts", "open", "high", "low", "close", "volume"])


@settings(max_examples=60, deadline=None)
@given(
    present=st.lists(st.booleans(), min_size=1, max_size=200),
    start=st.integers(min_value=0, max_value=30),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_aggregator_equals_resample_on_gappy_series(present: list[bool], start: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(start + np.flatnonzero(present), unit="min")
    if len(ts) == 0:
        return
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, len(ts))))
    frame = pd.DataFrame(
        {
            "ts": ts,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.random(len(ts)),
        }
    )
    candles = validate_candles(frame, M1, "generated")
    end = candles["ts"].iloc[-1] + M1.duration
    for target in (M5, M15):
        batch = resample(candles, M1, target, end, candles["ts"].iloc[0])
        streamed = stream(candles, target)
        assert len(streamed) == len(batch)
        if len(batch):
            assert (streamed["ts"].to_numpy() == (batch["ts"].astype("int64") // 1_000_000_000).to_numpy()).all()
            for column in ("open", "high", "low", "close", "volume"):
                assert np.allclose(streamed[column], batch[column], rtol=1e-12)


def test_the_clock_closes_a_bucket_no_trade_finished() -> None:
    aggregator = BarAggregator(M1, M5)
    minute = int(pd.Timestamp("2024-01-01 00:05", tz="UTC").timestamp())
    first = Bar(minute, 1.0, 1.0, 1.0, 1.0, 1.0)
    late = Bar(minute + 60, 1.0, 2.0, 1.0, 2.0, 1.0)  # then no trade until after 00:10
    assert aggregator.add(first) == [] and aggregator.add(late) == []
    assert aggregator.close_until(minute + 299) == []  # 00:10 not reached yet
    [closed] = aggregator.close_until(minute + 300)  # 00:05-00:10 closes on the clock
    assert (closed.ts, closed.open, closed.high, closed.close, closed.volume) == (minute, 1.0, 2.0, 2.0, 2.0)


def test_a_bucket_the_stream_began_inside_is_dropped() -> None:
    aggregator = BarAggregator(M1, M5)
    minute = int(pd.Timestamp("2024-01-01 00:03", tz="UTC").timestamp())
    assert aggregator.add(Bar(minute, 1.0, 1.0, 1.0, 1.0, 1.0)) == []
    assert aggregator.add(Bar(minute + 60, 1.0, 1.0, 1.0, 1.0, 1.0)) == []  # 00:04 ends the bucket, unseen start
