"""The `helios` command line, run as a user runs it: a subprocess with environment variables."""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from helios_core.candles import validate_candles
from helios_core.timeframes import Timeframe
from helios_live.data.recorded import Recorded
from helios_live.venues.valr.simulator.rest import serving
from tests.conftest import REPO, sample


def helios(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return command([sys.executable, "-m", "helios_dagster.cli", *args], env)


def command(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own CLI (or dagster's) with fixed arguments
        argv,
        cwd=REPO,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dagster").mkdir()
    return {"HELIOS_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dagster")}


def test_import_then_status(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "my-candles.parquet"
    sample("XMR-BTC_5m_2018-01.parquet").to_parquet(path)
    imported = helios("data", "import", str(path), "--pair", "xmr-btc", env=env)
    assert imported.returncode == 0, imported.stderr
    assert "importing" in imported.stdout and "check candles_expectations: passed" in imported.stdout
    status = helios("data", "status", env=env)
    assert status.returncode == 0, status.stderr
    [row_5m] = [line for line in status.stdout.splitlines() if line.startswith("XMRBTC") and " 5m " in line]
    assert row_5m.split()[2:4] == ["21", "5758"] and row_5m.split()[-2:] == ["2", "2"]  # days, rows; missing, gaps


def test_import_of_a_bad_file_names_the_row_and_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    bad = sample("LTC-BTC_5m_2018-01.parquet")
    bad.loc[[7, 8], "ts"] = bad.loc[[8, 7], "ts"].to_numpy()
    path = tmp_path / "ltc.csv"
    bad.to_csv(path, index=False)
    result = helios("data", "import", str(path), "--pair", "LTCBTC", env=env)
    assert result.returncode == 1
    assert "ltc.csv: data row 9" in result.stderr and "out of order" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (Path(env["HELIOS_HOME"]) / "lake").exists()


def shifted(frame: pd.DataFrame, to: str) -> pd.DataFrame:
    return frame.assign(ts=frame["ts"] + (pd.Timestamp(to, tz="UTC") - frame["ts"].iloc[0]))


def dated_1970(path: Path) -> None:
    shifted(sample("XMR-BTC_5m_2018-01.parquet").head(300), "1970-01-01").to_parquet(path)


def dated_2099(path: Path) -> None:
    shifted(sample("XMR-BTC_5m_2018-01.parquet").head(300), "2099-01-01").to_parquet(path)


def dated_2010(path: Path) -> None:  # plausible, but before the lake's first day
    shifted(sample("XMR-BTC_5m_2018-01.parquet").head(300), "2010-06-01").to_parquet(path)


def trades_backwards(path: Path) -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(500)
    trades.loc[[98, 99], "ts"] = trades.loc[[99, 98], "ts"].to_numpy()
    trades.to_parquet(path)


def off_minute(path: Path) -> None:
    candles = sample("XMR-BTC_5m_2018-01.parquet").head(300)
    candles.loc[5, "ts"] += pd.Timedelta(seconds=30)
    candles.to_parquet(path)


def epoch_seconds(path: Path) -> None:
    candles = sample("XMR-BTC_5m_2018-01.parquet").head(300)
    candles.assign(ts=candles["ts"].astype("int64") // 10**9).to_csv(path, index=False)


def a_day_missing(path: Path) -> None:
    candles = sample("XMR-BTC_5m_2018-01.parquet")
    pd.concat([candles.head(300), candles.tail(100)]).to_parquet(path)


@pytest.mark.parametrize(
    ("name", "make", "pair", "message"),
    [
        ("c1970.parquet", dated_1970, "XMRBTC", r"data row 1 \(ts=1970-01-01 00:00:00\+00:00\): before 2009-01-03"),
        ("c2099.parquet", dated_2099, "XMRBTC", r"data row 1 \(ts=2099-01-01 .*\): after .*tomorrow by the wall clock"),
        ("c2010.parquet", dated_2010, "XMRBTC", r"starts 2010-06-01, before HELIOS_HISTORY_START \(2018-01-01\)"),
        ("t.parquet", trades_backwards, "XRPETH", r"data row 100 \(ts=2019-10-11 00:36:02.87.*\): timestamp out of"),
        ("off.parquet", off_minute, "XMRBTC", r"data row 6 \(ts=2018-01-10 05:20:30\+00:00\): not aligned to a 1m"),
        ("s.csv", epoch_seconds, "XMRBTC", r"row 1 \(ts=1970-.*before 2009-.*\(integer ts read as epoch milliseconds"),
        ("gap_5m.parquet", a_day_missing, "XMRBTC", r"no XMRBTC candles on 2018-01-12 \(the candles jump from ts"),
    ],
)
def test_a_bad_file_is_one_error_line_naming_it(
    env: dict[str, str], tmp_path: Path, name: str, make: Callable[[Path], None], pair: str, message: str
) -> None:
    path = tmp_path / name
    make(path)
    result = helios("data", "import", str(path), "--pair", pair, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.splitlines()  # no traceback, no run log
    assert re.fullmatch(rf"error: {re.escape(str(path))}: .*", line), line
    assert re.search(message, line), line
    assert not (Path(env["HELIOS_HOME"]) / "lake").exists()


def test_a_file_backfill_checks_its_files_before_the_run(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    dated_1970(folder / "XMR-BTC_5m.parquet")
    args = ("data", "backfill", "--source", "file", "--pair", "XMRBTC", "--start", "2018-01-10", "--end", "2018-01-11")
    bad = helios(*args, env=env | {"HELIOS_FILE_DIR": str(folder)})
    assert bad.returncode == 1 and bad.stderr.splitlines() == [
        f"error: {folder / 'XMR-BTC_5m.parquet'}: data row 1 (ts=1970-01-01 00:00:00+00:00): before 2009-01-03,"
        " the first Bitcoin block"
    ]
    past = helios("data", "backfill", "--pair", "XMRBTC", "--start", "2017-12-30", "--end", "2018-01-11", env=env)
    assert past.returncode == 1 and past.stderr.splitlines() == [
        "error: start 2017-12-30 is before HELIOS_HISTORY_START (2018-01-01)"
    ]
    assert not (Path(env["HELIOS_HOME"]) / "lake").exists()


def test_unknown_pair_and_bad_config_fail_clearly(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    sample("ETH-BTC_5m_2018-01.parquet").to_parquet(path)
    unknown = helios("data", "import", str(path), "--pair", "DOGEZAR", env=env)
    assert unknown.returncode == 1 and "unknown pair DOGEZAR" in unknown.stderr
    config = helios("data", "status", env=env | {"HELIOS_SOURCE": "binance"})
    assert config.returncode == 1 and "HELIOS_SOURCE" in config.stderr


def test_backfill_from_valr_over_loopback(env: dict[str, str]) -> None:
    btc = validate_candles(sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet"), Timeframe.parse("1m"), "btc")
    with serving(Recorded(candles={"BTCZAR": btc})) as server:
        result = helios(
            "data",
            "backfill",
            "--source",
            "valr",
            "--pair",
            "BTCZAR",
            "--start",
            "2022-01-03",
            "--end",
            "2022-01-04",
            env=env | {"HELIOS_VALR_BASE_URL": server.url},
        )
        assert result.returncode == 0, result.stderr
        assert len(server.requests) == 2 * 5  # two days, five pages of 300 buckets each
    assert "raw_candles: 2/2 partitions" in result.stderr  # progress in the run log
    lake = Path(env["HELIOS_HOME"]) / "lake" / "candles" / "pair=BTCZAR"
    assert sorted(p.name for p in (lake / "timeframe=15m").iterdir()) == [
        "date=2022-01-03.parquet",
        "date=2022-01-04.parquet",
    ]


def test_dagster_loads_the_code_location(env: dict[str, str]) -> None:
    result = command(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_dagster_backfills_a_range_of_pairs_and_days_in_one_run(env: dict[str, str]) -> None:
    dagster = str(Path(sys.executable).parent / "dagster")
    select = ["asset", "materialize", "-m", "helios_dagster.definitions", "--select", "raw_candles,candles"]
    pairs = {"HELIOS_PAIRS": "XRPETH,LTCBTC,ETHBTC,ADABTC"}  # partition order is alphabetical
    result = command([dagster, *select, "--partition-range", "2018-01-14|ETHBTC...2018-01-15|LTCBTC"], env | pairs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lake = Path(env["HELIOS_HOME"]) / "lake" / "candles"
    written = sorted(str(p.relative_to(lake)) for p in lake.glob("*/timeframe=5m/*.parquet"))
    assert written == [
        "pair=ETHBTC/timeframe=5m/date=2018-01-14.parquet",
        "pair=ETHBTC/timeframe=5m/date=2018-01-15.parquet",
        "pair=LTCBTC/timeframe=5m/date=2018-01-14.parquet",
        "pair=LTCBTC/timeframe=5m/date=2018-01-15.parquet",
    ]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert len(instance.get_runs()) == 1  # 2 pairs x 2 days, one run
