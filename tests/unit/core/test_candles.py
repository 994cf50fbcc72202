import numpy as np
import pandas as pd
import pytest

from helios_core.candles import (
    check_plausible_dates,
    coerce_timestamps,
    find_gaps,
    resample,
    trades_to_candles,
    validate_candles,
    validate_trades,
)
from helios_core.errors import DataValidationError
from helios_core.timeframes import Timeframe
from tests.conftest import sample

M1, M5, M15 = (Timeframe.parse(t) for t in ("1m", "5m", "15m"))
EXTRAS = ["trade_count", "buy_volume"]


def frame(rows: list[tuple[str, float, float, float, float, float]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    return out.astype(dict.fromkeys(["open", "high", "low", "close", "volume"], "float64")).assign(
        ts=lambda f: pd.to_datetime(f["ts"], utc=True)
    )


GOOD = [
    ("2024-01-01T00:00:00Z", 10, 12, 9, 11, 1.0),
    ("2024-01-01T00:01:00Z", 11, 13, 10, 12, 2.0),
    ("2024-01-01T00:02:00Z", 12, 12, 8, 9, 3.0),
    ("2024-01-01T00:03:00Z", 9, 10, 9, 10, 0.0),
    ("2024-01-01T00:04:00Z", 10, 11, 10, 11, 4.0),
    ("2024-01-01T00:05:00Z", 11, 15, 11, 14, 5.0),
]


def test_validate_accepts_good_candles_with_canonical_dtypes() -> None:
    out = validate_candles(frame(GOOD), M1, "good.parquet")
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    assert out["trade_count"].isna().all()  # unknown, never invented


@pytest.mark.parametrize(
    ("row", "patch", "message"),
    [
        (2, {"high": 7.0}, "high < low"),
        (1, {"low": 11.5}, "low above open or close"),
        (3, {"high": 9.5}, "high below open or close"),
        (4, {"volume": -1.0}, "volume < 0"),
        (0, {"open": 0.0}, "price must be > 0"),
        (5, {"close": np.nan}, "null or NaN"),
    ],
)
def test_bad_row_is_named(row: int, patch: dict[str, float], message: str) -> None:
    bad = frame(GOOD)
    for column, value in patch.items():
        bad.loc[row, column] = value
    with pytest.raises(DataValidationError, match=rf"bad\.csv: data row {row + 1} .*{message}"):
        validate_candles(bad, M1, "bad.csv")


def test_out_of_order_and_duplicate_timestamps_are_named() -> None:
    swapped = frame(GOOD).iloc[[0, 2, 1, 3]].reset_index(drop=True)
    with pytest.raises(DataValidationError, match="data row 3 .*out of order"):
        validate_candles(swapped, M1, "x")
    duplicated = frame(GOOD).iloc[[0, 1, 1, 2]].reset_index(drop=True)
    with pytest.raises(DataValidationError, match="data row 3 .*duplicate"):
        validate_candles(duplicated, M1, "x")


def test_naive_misaligned_missing_and_non_numeric_inputs_are_refused() -> None:
    naive = frame(GOOD).assign(ts=lambda f: f["ts"].dt.tz_localize(None))
    with pytest.raises(DataValidationError, match="timezone-naive"):
        validate_candles(naive, M1, "x")
    with pytest.raises(DataValidationError, match="not aligned to a 5m"):
        validate_candles(frame(GOOD), M5, "x")
    with pytest.raises(DataValidationError, match=r"missing columns \['volume'\]"):
        validate_candles(frame(GOOD).drop(columns="volume"), M1, "x")
    text = frame(GOOD).astype({"open": object})
    text.loc[1, "open"] = "eleven"
    with pytest.raises(DataValidationError, match="data row 2 .*'eleven' is not a number"):
        validate_candles(text, M1, "x")


def test_iso_strings_with_offset_and_epoch_ms_are_accepted() -> None:
    as_text = frame(GOOD).assign(ts=[r[0] for r in GOOD])
    as_ms = frame(GOOD).assign(ts=lambda f: (f["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms"))
    expected = validate_candles(frame(GOOD), M1, "x")
    pd.testing.assert_frame_equal(validate_candles(as_text, M1, "x"), expected)
    pd.testing.assert_frame_equal(validate_candles(as_ms, M1, "x"), expected)


def test_resample_applies_ohlcv_rules_and_drops_the_partial_last_candle() -> None:
    candles = validate_candles(frame(GOOD), M1, "x").assign(trade_count=pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"))
    out = resample(candles, M1, M5, complete_until=pd.Timestamp("2024-01-01T00:06:00Z"))
    assert len(out) == 1  # the 00:05 bucket ends at 00:10, after the data: partial, dropped
    first = out.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 13, 8, 11, 10.0)
    assert first.trade_count == 15


def test_resample_drops_a_bucket_that_starts_before_history() -> None:
    candles = validate_candles(frame(GOOD[2:]), M1, "x")  # history begins at 00:02
    out = resample(
        candles, M1, M5, pd.Timestamp("2024-01-01T00:10:00Z"), complete_from=pd.Timestamp("2024-01-01T00:02:00Z")
    )
    assert list(out["ts"]) == [pd.Timestamp("2024-01-01T00:05:00Z")]


def test_trade_count_is_unknown_if_any_constituent_is_unknown() -> None:
    candles = validate_candles(frame(GOOD), M1, "x").assign(trade_count=pd.array([1, None, 3, 4, 5, 6], dtype="Int64"))
    out = resample(candles, M1, M5, pd.Timestamp("2024-01-01T00:10:00Z"))
    assert out["trade_count"].isna().tolist() == [True, False]


def reference_resample(candles: pd.DataFrame, rule: str, end: pd.Timestamp) -> pd.DataFrame:
    """Independent implementation with pandas' own resampler."""
    agg = (
        candles.set_index("ts")
        .resample(rule, label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    )
    agg = agg.dropna(subset=["open"]).reset_index()
    return agg.loc[agg["ts"] + pd.Timedelta(rule) <= end].reset_index(drop=True)


@pytest.mark.parametrize("name", ["BTC-PERP_1m_2021-12-31_2022-02-01.parquet", "XRP-ETH_1m_2019-10.parquet"])
@pytest.mark.parametrize(("target", "rule"), [(M5, "5min"), (M15, "15min")])
def test_resample_matches_pandas_on_real_data(name: str, target: Timeframe, rule: str) -> None:
    candles = validate_candles(sample(name), M1, name)
    end = candles["ts"].iloc[-1] + pd.Timedelta("1min")
    start = candles["ts"].iloc[0].ceil(rule)
    ours = resample(candles, M1, target, end, complete_from=candles["ts"].iloc[0])
    ref = reference_resample(candles.loc[candles["ts"] >= start], rule, end)
    pd.testing.assert_frame_equal(ours.drop(columns=EXTRAS), ref, check_dtype=False)


def test_trades_rebuild_the_real_xrp_eth_one_minute_candles_exactly() -> None:
    trades = validate_trades(sample("XRP-ETH_trades_2019-10.parquet"), "trades")
    real = validate_candles(sample("XRP-ETH_1m_2019-10.parquet"), M1, "candles")
    end = real["ts"].iloc[-1] + pd.Timedelta("1min")
    built = trades_to_candles(trades, M1, end)
    pd.testing.assert_frame_equal(built.drop(columns=EXTRAS), real.drop(columns=EXTRAS), check_exact=False, rtol=1e-12)
    assert int(built["trade_count"].sum()) == len(trades)
    raw = sample("XRP-ETH_trades_2019-10.parquet")
    buys = raw.loc[raw["side"] == "BUY"].groupby(raw["ts"].dt.floor("1min"))["quantity"].sum()
    by_minute = built.set_index("ts")["buy_volume"]
    assert np.allclose(by_minute.loc[buys.index], buys.to_numpy(), rtol=1e-12)
    assert (by_minute.drop(buys.index) == 0).all()  # minutes with only taker sells


def test_buy_volume_is_summed_and_unknown_if_any_part_is_unknown() -> None:
    candles = validate_candles(frame(GOOD), M1, "x").assign(buy_volume=[0.5, 1.0, np.nan, 0.0, 2.0, 1.0])
    out = resample(candles, M1, M5, pd.Timestamp("2024-01-01T00:10:00Z"))
    assert np.isnan(out["buy_volume"].iloc[0]) and out["buy_volume"].iloc[1] == 1.0


def test_buy_volume_above_volume_is_refused() -> None:
    bad = frame(GOOD).assign(buy_volume=[0.5, 3.0, 1.0, 0.0, 1.0, 1.0])
    with pytest.raises(DataValidationError, match="data row 2 .*buy_volume outside"):
        validate_candles(bad, M1, "x")


def test_trades_need_positive_price_and_quantity() -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(5).copy()
    trades.loc[3, "quantity"] = 0.0
    with pytest.raises(DataValidationError, match="data row 4"):
        validate_trades(trades, "t.parquet")


@pytest.mark.parametrize(
    ("name", "tf", "missing"),
    [
        ("ADA-BTC_5m_2018-01.parquet", M5, 40),
        ("XMR-BTC_5m_2018-01.parquet", M5, 2),
        ("ETH-BTC_5m_2018-01.parquet", M5, 0),
        ("BTC-PERP_1m_2021-12-31_2022-02-01.parquet", M1, 0),
        ("XRP-ETH_1m_2019-10.parquet", M1, 1091),
    ],
)
def test_gap_finder_finds_the_real_gaps(name: str, tf: Timeframe, missing: int) -> None:
    candles = validate_candles(sample(name), tf, name)
    gaps = find_gaps(candles, tf, candles["ts"].iloc[0], candles["ts"].iloc[-1] + tf.duration)
    assert sum(g.missing for g in gaps) == missing
    for gap in gaps:
        assert gap.end - gap.start == tf.duration * gap.missing
        assert not candles["ts"].between(gap.start, gap.end, inclusive="left").any()


def test_trades_going_back_in_time_are_refused_naming_the_row() -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(10).copy()
    assert trades["ts"].iloc[4] < trades["ts"].iloc[5]
    trades.loc[[4, 5], "ts"] = trades.loc[[5, 4], "ts"].to_numpy()
    with pytest.raises(DataValidationError, match=r"t\.parquet: data row 6 .*out of order \(previous row ts="):
        validate_trades(trades, "t.parquet")


def test_trades_at_the_same_instant_are_fine() -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(10).assign(ts=pd.Timestamp("2019-10-11T00:00:00Z"))
    assert len(validate_trades(trades, "t.parquet")) == 10


NOW = pd.Timestamp("2024-06-15T23:59:00Z")


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        ("1970-01-01T00:00:00Z", "before 2009-01-03"),
        ("2009-01-02T23:59:00Z", "before 2009-01-03"),
        ("2024-06-17T00:00:00Z", "after 2024-06-16, tomorrow by the wall clock"),
        ("2099-01-01T00:00:00Z", "after 2024-06-16"),
    ],
)
def test_implausible_dates_are_refused_naming_the_row(ts: str, message: str) -> None:
    stamps = pd.Series(pd.to_datetime(["2020-01-01T00:00:00Z", ts], utc=True))
    with pytest.raises(DataValidationError, match=rf"f\.csv: data row 2 \(ts=.*\): {message}"):
        check_plausible_dates(stamps, "f.csv", NOW)


def test_plausible_dates_run_from_the_first_block_to_the_end_of_tomorrow() -> None:
    stamps = pd.Series(pd.to_datetime(["2009-01-03T00:00:00Z", "2024-06-16T23:59:00Z"], utc=True))
    check_plausible_dates(stamps, "f.csv", NOW)


def test_integer_epoch_seconds_are_refused_saying_milliseconds_were_assumed() -> None:
    seconds = (frame(GOOD)["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s")
    ts = coerce_timestamps(seconds, "s.csv")
    assert ts.iloc[0] == pd.Timestamp("1970-01-20T17:21:07.200Z")  # 2024-01-01 as 1_704_067_200 ms
    with pytest.raises(DataValidationError, match=r"before 2009-01-03.*\(integer ts read as epoch milliseconds\)"):
        check_plausible_dates(ts, "s.csv", NOW, integer=True)


def test_integer_epoch_microseconds_overflow_is_named_not_a_traceback() -> None:
    micros = frame(GOOD).assign(ts=lambda f: (f["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1us"))
    with pytest.raises(DataValidationError, match=r"us\.csv: data row 1 .*integer ts read as epoch milliseconds"):
        validate_candles(micros, M1, "us.csv")


def test_an_unparseable_ts_string_names_its_row() -> None:
    text = frame(GOOD).assign(ts=[r[0] for r in GOOD])
    text.loc[3, "ts"] = "yesterday"
    with pytest.raises(DataValidationError, match=r"x\.csv: data row 4 \(ts=yesterday\): ts is not an ISO timestamp"):
        validate_candles(text, M1, "x.csv")
