import numpy as np
import pandas as pd
import pytest

from helios_core.labels import BarrierConfig, Label, LookaheadConfig, lookahead_labels, triple_barrier_labels
from helios_core.timeframes import Timeframe
from helios_core.volatility import ewma_volatility

M5 = Timeframe.parse("5m")


def candles(closes: list[float], highs: list[float] | None = None, lows: list[float] | None = None) -> pd.DataFrame:
    n = len(closes)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"),
            "open": closes,
            "high": highs or closes,
            "low": lows or closes,
            "close": closes,
            "volume": 1.0,
        }
    )


def test_lookahead_defaults_are_the_designs() -> None:
    config = LookaheadConfig()
    assert (config.timeframe, config.candles, config.up, config.down) == ("5m", 12, 0.02, 0.02)
    assert config.horizon == pd.Timedelta(hours=1)


def test_lookahead_classifies_by_the_return_n_candles_ahead() -> None:
    closes = [100.0, 100.0, 100.0, 103.0, 97.0, 101.0]
    out = lookahead_labels(candles(closes), M5, LookaheadConfig(candles=3))
    assert out["label"].tolist()[:3] == [Label.BUY, Label.SELL, Label.HOLD]
    assert out["fwd_return"].iloc[0] == pytest.approx(0.03)
    assert out["label"].isna().tolist() == [False, False, False, True, True, True]  # last N: no future


def test_a_missing_future_candle_gives_no_label() -> None:
    frame = candles([100.0] * 8).drop(index=5).reset_index(drop=True)
    out = lookahead_labels(frame, M5, LookaheadConfig(candles=3))
    assert out["label"].isna().tolist() == [False, False, True, False, False, True, True]
    assert (out["label_end"] - out["t"] == pd.Timedelta(minutes=15)).all()


def barrier(frame: pd.DataFrame, vol: float = 0.01, steps: int = 3) -> pd.Series:
    out = triple_barrier_labels(frame, M5, pd.Series(vol, index=frame.index), BarrierConfig("5m", steps, 1.0, 1.0))
    return out["barrier_label"]


def test_triple_barrier_takes_the_first_touch() -> None:
    up = 100 * np.exp(0.01 * np.sqrt(3))  # barrier at +1 sigma over the 3-candle horizon
    assert barrier(candles([100, 100, 100, 100, 100], highs=[100, 100, up + 0.01, 100, 100]))[0] == Label.BUY
    assert barrier(candles([100, 100, 100, 100, 100], lows=[100, 90, 100, 100, 100]))[0] == Label.SELL
    both = candles([100, 100, 100, 100, 100], highs=[100, 120, 100, 100, 100], lows=[100, 80, 100, 100, 100])
    assert barrier(both)[0] == Label.SELL  # both in one candle: the stop is assumed first
    assert barrier(candles([100.0] * 8))[0] == Label.HOLD  # time limit


def test_triple_barrier_without_touch_or_future_is_null_and_a_late_touch_outside_the_horizon_is_ignored() -> None:
    out = barrier(candles([100, 100, 100, 100, 100, 100], highs=[100, 100, 100, 100, 150, 100]))
    assert out[0] == Label.HOLD  # the spike comes after the 3-candle horizon of the first sample
    assert out[1] == Label.BUY
    assert out.isna().tolist()[-2:] == [True, True]


def test_volatility_at_t_uses_only_the_past() -> None:
    returns = pd.Series(np.random.default_rng(1).normal(0, 0.01, 500))
    before = ewma_volatility(returns)
    changed = returns.copy()
    changed.iloc[300:] *= 10
    after = ewma_volatility(changed)
    assert np.allclose(before.iloc[:300], after.iloc[:300], equal_nan=True)
    assert before.iloc[:29].isna().all() and before.iloc[29:].notna().all()
