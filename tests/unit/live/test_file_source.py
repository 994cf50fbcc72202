from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from helios_core.errors import DataValidationError, SourceError
from helios_live.data.sources import FileSource
from tests.conftest import SAMPLE, sample, shared_data


def test_discovers_pairs_and_native_timeframes_from_the_sample_folder() -> None:
    source = FileSource(directory=SAMPLE)
    assert source.pairs == ["ADABTC", "BTCPERP", "ETHBTC", "LTCBTC", "XMRBTC", "XRPETH"]
    day = source.fetch_candles("ADABTC", datetime(2018, 1, 15, tzinfo=UTC), datetime(2018, 1, 16, tzinfo=UTC))
    assert str(day.timeframe) == "5m"
    assert len(day.candles) == 288 - 40  # the 40 real missing candles of ADA-BTC are all on this day
    assert day.complete_until == pd.Timestamp("2018-01-16", tz="UTC")


def test_history_edges_are_the_first_and_last_candle() -> None:
    source = FileSource(directory=SAMPLE)
    first, end = source.coverage("BTCPERP")
    assert first == pd.Timestamp("2021-12-31T23:01:00Z")
    assert end == pd.Timestamp("2022-02-01T05:32:00Z")
    last_day = source.fetch_candles("BTCPERP", datetime(2022, 2, 1, tzinfo=UTC), datetime(2022, 2, 2, tzinfo=UTC))
    assert last_day.complete_until == end


def test_csv_candles_and_trades_only_pairs(tmp_path: Path) -> None:
    candles = sample("ETH-BTC_5m_2018-01.parquet").head(50)
    candles.assign(ts=candles["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(tmp_path / "ETH-BTC_5m.csv", index=False)
    sample("XRP-ETH_trades_2019-10.parquet").to_parquet(tmp_path / "XRP-ETH_trades.parquet")
    source = FileSource(directory=tmp_path)
    assert source.coverage("ETHBTC")[0] == candles["ts"].iloc[0]
    batch = source.fetch_candles("XRPETH", datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 12, tzinfo=UTC))
    assert str(batch.timeframe) == "1m" and batch.candles["trade_count"].notna().all()


def test_unknown_pair_and_malformed_file_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "BTC-ZAR_1m.parquet").write_bytes(b"this is not parquet")
    source = FileSource(directory=tmp_path)
    with pytest.raises(SourceError, match=r"no file for pair ETHZAR; it has \['BTCZAR'\]"):
        source.fetch_candles("ETHZAR", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    with pytest.raises(DataValidationError, match="BTC-ZAR_1m.parquet: cannot read as parquet"):
        source.coverage("BTCZAR")


def test_a_bad_row_fails_the_whole_file_naming_the_row(tmp_path: Path) -> None:
    bad = sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(100).copy()
    bad.loc[41, "high"] = bad.loc[41, "low"] / 2
    bad.to_parquet(tmp_path / "BTC-PERP_1m.parquet")
    with pytest.raises(DataValidationError, match=r"BTC-PERP_1m.parquet: data row 42 .*high < low"):
        FileSource(directory=tmp_path).coverage("BTCPERP")


def test_missing_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        FileSource(directory=tmp_path / "nope")


def shifted(frame: pd.DataFrame, to: str) -> pd.DataFrame:
    return frame.assign(ts=frame["ts"] + (pd.Timestamp(to, tz="UTC") - frame["ts"].iloc[0]))


ETH = sample("ETH-BTC_5m_2018-01.parquet").head(50)


@pytest.mark.parametrize(
    ("start", "message"), [("1970-01-01", "before 2009-01-03"), ("2099-01-01", "after .*tomorrow by the wall clock")]
)
def test_a_file_outside_plausible_dates_is_refused_naming_it(tmp_path: Path, start: str, message: str) -> None:
    shifted(ETH, start).to_parquet(tmp_path / "ETH-BTC_5m.parquet")
    with pytest.raises(DataValidationError, match=rf"ETH-BTC_5m\.parquet: data row 1 \(ts={start} .*\): {message}"):
        FileSource(directory=tmp_path).coverage("ETHBTC")


def test_tomorrow_is_the_last_plausible_day_by_the_source_clock(tmp_path: Path) -> None:
    shifted(ETH, "2024-03-02").to_parquet(tmp_path / "ETH-BTC_5m.parquet")
    assert FileSource(directory=tmp_path, clock=lambda: datetime(2024, 3, 1, tzinfo=UTC)).coverage("ETHBTC")
    with pytest.raises(DataValidationError, match="after 2024-02-29, tomorrow"):
        FileSource(directory=tmp_path, clock=lambda: datetime(2024, 2, 28, 23, 59, tzinfo=UTC)).coverage("ETHBTC")


def test_integer_epoch_seconds_are_refused_saying_milliseconds_were_assumed(tmp_path: Path) -> None:
    ETH.assign(ts=ETH["ts"].astype("int64") // 10**9).to_csv(tmp_path / "ETH-BTC_5m.csv", index=False)
    with pytest.raises(
        DataValidationError, match=r"ETH-BTC_5m\.csv: data row 1 .*before 2009-01-03.*integer ts read as epoch milli"
    ):
        FileSource(directory=tmp_path).coverage("ETHBTC")
    ETH.assign(ts=ETH["ts"].astype("int64") // 10**6).to_csv(tmp_path / "ETH-BTC_5m.csv", index=False)
    assert FileSource(directory=tmp_path).coverage("ETHBTC")[0] == ETH["ts"].iloc[0]


def test_an_off_minute_candle_is_named_when_the_timeframe_is_inferred(tmp_path: Path) -> None:
    off = ETH.copy()
    off.loc[5, "ts"] += pd.Timedelta(seconds=30)
    off.to_parquet(tmp_path / "eth.parquet")  # no timeframe in the name: inferred from the steps
    with pytest.raises(DataValidationError, match=r"eth\.parquet: data row 6 .*not aligned to a 1m candle"):
        FileSource(files={"ETHBTC": [tmp_path / "eth.parquet"]}).coverage("ETHBTC")


def test_a_step_that_is_no_timeframe_is_named(tmp_path: Path) -> None:
    every_other = sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(20).iloc[::2].reset_index(drop=True)
    every_other.to_parquet(tmp_path / "btc.parquet")
    with pytest.raises(DataValidationError, match=r"btc\.parquet: data row 2 .*120 s.*name the timeframe"):
        FileSource(files={"BTCPERP": [tmp_path / "btc.parquet"]}).coverage("BTCPERP")


def test_trades_going_back_in_time_are_refused_naming_the_file_and_row(tmp_path: Path) -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(200).copy()
    trades.loc[[98, 99], "ts"] = trades.loc[[99, 98], "ts"].to_numpy()
    trades.to_parquet(tmp_path / "XRP-ETH_trades.parquet")
    with pytest.raises(DataValidationError, match=r"XRP-ETH_trades\.parquet: data row 100 .*out of order"):
        FileSource(directory=tmp_path).coverage("XRPETH")


SHARED_FILES = [
    *(f"candles/{p}_2018-01.parquet" for p in ("ADA-BTC_5m", "ETH-BTC_5m", "LTC-BTC_5m", "XMR-BTC_5m")),
    "candles/BTC-PERP_1m_2021-12-31_2022-02-01.parquet",
    "candles/XRP-ETH_1m_2019-10.parquet",
    "trades/XRP-ETH_trades_2019-10.parquet",
    "trades/BTCUSDT_trades_2021-01-08.parquet",
]


@pytest.mark.parametrize("relative", SHARED_FILES)
def test_every_shared_data_file_passes_the_file_rules(relative: str) -> None:
    first, end = FileSource(files={"BTCZAR": [shared_data(relative)]}).coverage("BTCZAR")
    assert pd.Timestamp("2009-01-03", tz="UTC") <= first < end


def test_every_sample_file_passes_the_file_rules() -> None:
    source = FileSource(directory=SAMPLE)
    for pair in source.pairs:
        source.coverage(pair)
    day = (datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 12, tzinfo=UTC))
    assert source.reference_candles("XRPETH", *day) is not None  # the candle file beside the trades
