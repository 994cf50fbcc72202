from collections import Counter

import numpy as np
import pandas as pd
import pytest
import ta

from helios_core.candles import resample, to_bars
from helios_core.features.batch import block_features, indicators
from helios_core.features.multi import StreamingFeatures, emit
from helios_core.features.spec import FEATURE_SET_VERSION, NAMES, SPECS, TIMEFRAMES, vector_names
from helios_core.features.streaming import StreamingBlock
from tests.conftest import REPO
from tests.features_support import M1, M5, M15, batch_vectors, one_minute


def test_the_definition_is_thirty_named_features_per_timeframe() -> None:
    assert len(SPECS) == 30 and len(set(NAMES)) == 30
    assert Counter(s.group for s in SPECS) == {"price": 10, "volume": 5, "technical": 10, "microstructure": 5}
    names = vector_names()
    assert len(names) == 90 and names[0] == "1m.ret_1" and names[30] == "5m.ret_1" and names[-1] == "15m.corr_ref_30"
    assert TIMEFRAMES == ("1m", "5m", "15m") and FEATURE_SET_VERSION


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return one_minute()


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        ("rsi_14", lambda c: ta.momentum.RSIIndicator(c, 14).rsi()),
        ("rsi_7", lambda c: ta.momentum.RSIIndicator(c, 7).rsi()),
        ("macd", lambda c: ta.trend.MACD(c, 26, 12, 9).macd()),
        ("macd_signal", lambda c: ta.trend.MACD(c, 26, 12, 9).macd_signal()),
        ("sma_20", lambda c: ta.trend.SMAIndicator(c, 20).sma_indicator()),
        ("sma_50", lambda c: ta.trend.SMAIndicator(c, 50).sma_indicator()),
        ("ema_12", lambda c: ta.trend.EMAIndicator(c, 12).ema_indicator()),
        ("ema_26", lambda c: ta.trend.EMAIndicator(c, 26).ema_indicator()),
        ("bb_upper", lambda c: ta.volatility.BollingerBands(c, 20, 2).bollinger_hband()),
        ("bb_lower", lambda c: ta.volatility.BollingerBands(c, 20, 2).bollinger_lband()),
    ],
)
def test_indicators_match_the_ta_library(btc: pd.DataFrame, ours: str, reference) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = indicators(btc, M1)[ours], reference(btc["close"])
    assert (mine.isna() == theirs.isna()).all()  # same warm-up rows
    valid = theirs.notna()
    rel = (mine[valid] - theirs[valid]).abs() / theirs[valid].abs()
    assert valid.sum() > 44_900 and rel.max() < 1e-9


def test_features_are_scale_free(btc: pd.DataFrame) -> None:
    doubled = btc.assign(**{k: btc[k] * 1000 for k in ("open", "high", "low", "close")})
    a, b = block_features(btc, M1), block_features(doubled, M1)
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)


BOUNDARIES = [
    ("12:04", "11:55", "11:45"),
    ("12:05", "12:00", "11:45"),
    ("12:14", "12:05", "11:45"),
    ("12:15", "12:10", "12:00"),
]


@pytest.mark.parametrize(("t", "open_5m", "open_15m"), BOUNDARIES)
def test_higher_blocks_use_only_candles_closed_by_t(btc: pd.DataFrame, t: str, open_5m: str, open_15m: str) -> None:
    decision = pd.Timestamp(f"2022-01-20 {t}", tz="UTC")
    start = decision - pd.Timedelta(days=2)
    window = btc.loc[(btc["ts"] >= start) & (btc["ts"] < decision)].reset_index(drop=True)  # data ends at t
    vectors = batch_vectors(window)
    at_t = vectors.iloc[-1]
    assert at_t.name == decision
    later = btc.loc[(btc["ts"] >= start) & (btc["ts"] < decision + pd.Timedelta(hours=2))].reset_index(drop=True)
    assert batch_vectors(later).loc[decision].equals(at_t)  # candles after t change nothing at t
    end = window["ts"].iloc[-1] + M1.duration
    for tf, expected_open in ((M5, open_5m), (M15, open_15m)):
        candles = resample(window, M1, tf, end, window["ts"].iloc[0])
        assert candles["ts"].iloc[-1] == pd.Timestamp(f"2022-01-20 {expected_open}", tz="UTC")
        block = at_t[[c for c in vectors.columns if c.startswith(f"{tf}.")]].to_numpy()
        assert np.array_equal(block, block_features(candles, tf).iloc[-1].to_numpy(), equal_nan=True)
    stream = StreamingFeatures()
    for bar in to_bars(window):
        last = stream.update(bar)
    assert np.allclose(np.array(last), at_t.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)


def test_a_gap_invalidates_features_until_their_warm_up_refills(btc: pd.DataFrame) -> None:
    gap_at = 20_000
    gapped = btc.drop(index=range(gap_at, gap_at + 3)).reset_index(drop=True)
    features = block_features(gapped, M1)
    for spec in SPECS:
        if spec.needs != "candles":
            continue
        after = features[spec.name].iloc[gap_at : gap_at + spec.warmup + 5]
        assert after.iloc[: spec.warmup - 1].isna().all(), spec.name
        assert after.iloc[spec.warmup - 1 :].notna().all(), spec.name
    vectors = batch_vectors(gapped)
    values, mask = emit(vectors.to_numpy())
    assert np.isfinite(values).all() and not mask.all() and mask.any()
    assert (values[~mask] == 0.0).all()


def test_no_interpolation_across_a_gap(btc: pd.DataFrame) -> None:
    gapped = btc.drop(index=range(20_000, 20_010)).reset_index(drop=True)
    first_after = block_features(gapped, M1).iloc[20_000]
    assert np.isnan(first_after["ret_1"])  # no return is made up across the hole
    assert first_after["body"] == pytest.approx(
        (gapped["close"][20_000] - gapped["open"][20_000]) / gapped["open"][20_000]
    )


def test_the_docs_table_is_the_definition() -> None:
    docs = (REPO / "docs" / "features.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 30
    for spec, row in zip(SPECS, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"`{spec.name}`" and cells[2] == spec.group and cells[3] == spec.formula
        assert cells[4] == spec.unit and cells[6] == str(spec.warmup) and cells[7] == spec.needs


def test_a_candle_that_raises_starts_a_new_segment_and_the_block_goes_on(btc: pd.DataFrame) -> None:
    bars = to_bars(btc.head(60))
    block, fresh = StreamingBlock(M1), StreamingBlock(M1)
    for bar in bars[:40]:
        block.update(bar)
    with pytest.raises(ValueError):
        block.update(bars[40]._replace(close=0.0))  # no log of a zero close
    after = [block.update(bar) for bar in bars[41:]]
    assert np.array_equal(after, [fresh.update(bar) for bar in bars[41:]], equal_nan=True)  # as if from scratch
