"""The `helios` command line, run as a user runs it: a subprocess with environment variables."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
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
