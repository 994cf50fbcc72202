from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from helios_core.errors import DataValidationError, SourceError
from helios_live.data.sources import FileSource
from tests.conftest import SAMPLE, sample


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
