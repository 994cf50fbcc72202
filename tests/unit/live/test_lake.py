from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from helios_live.data.lake import Lake

DAY = date(2024, 1, 2)


def candles(n: int, start: str = "2024-01-02T00:00:00Z") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="1min")
    return pd.DataFrame({"ts": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0})


def test_layout_follows_the_hive_contract(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    path = lake.write("candles", "BTCZAR", "5m", DAY, candles(3), {"complete_until": "x"})
    assert path == tmp_path / "candles" / "pair=BTCZAR" / "timeframe=5m" / "date=2024-01-02.parquet"
    [found] = list(lake.files("candles"))
    assert (found.pair, found.timeframe, found.day) == ("BTCZAR", "5m", DAY)


def test_rewrite_replaces_and_metadata_round_trips(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("candles", "BTCZAR", "1m", DAY, candles(5), {"complete_until": "a"})
    lake.write("candles", "BTCZAR", "1m", DAY, candles(2), {"complete_until": "b"})
    frame, meta = lake.read("candles", "BTCZAR", "1m", DAY)
    assert len(frame) == 2
    assert meta == {"complete_until": "b"}
    assert [p.name for p in lake.path("candles", "BTCZAR", "1m", DAY).parent.iterdir()] == ["date=2024-01-02.parquet"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    lake.write("candles", "BTCZAR", "1m", DAY, candles(5), {})

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        lake.write("candles", "BTCZAR", "1m", DAY, candles(1), {})
    monkeypatch.undo()
    frame, _ = lake.read("candles", "BTCZAR", "1m", DAY)
    assert len(frame) == 5
    assert len(list(lake.path("candles", "BTCZAR", "1m", DAY).parent.iterdir())) == 1


def test_read_range_concatenates_present_days_in_order(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("candles", "X", "1m", date(2024, 1, 3), candles(2, "2024-01-03T00:00:00Z"), {})
    lake.write("candles", "X", "1m", date(2024, 1, 1), candles(2, "2024-01-01T00:00:00Z"), {})
    out = lake.read_range("candles", "X", "1m", date(2024, 1, 1), date(2024, 1, 3))
    assert out["ts"].is_monotonic_increasing and len(out) == 4


def test_missing_partition_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pair=NOPE"):
        Lake(tmp_path).read("candles", "NOPE", "1m", DAY)
