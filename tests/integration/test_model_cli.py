"""`helios backtest` and `helios model train|list`, run as a user runs them: a subprocess."""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from helios_dagster.resources import market_data_from
from helios_dagster.runs import run_market_data
from helios_dagster.schedules import PIPELINE
from helios_live.data.lake import Lake
from helios_live.data.recorded import CANDLE_FIELDS
from helios_live.models.registry import Registry
from helios_live.settings import load_settings
from tests.conftest import sample
from tests.integration.test_cli import helios
from tests.integration.test_model_assets import QUICK
from tests.live_support import BTC, make_bundle

FAST = {"HELIOS_LIVE_WARMUP_DAYS": "1", "HELIOS_LIVE_MIN_CONFIDENCE": "0.4"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dagster").mkdir()
    return {"HELIOS_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dagster")} | FAST


def lake_with_candles(home: Path, first: date, last: date) -> None:
    candles = sample(BTC)
    store = Lake(home / "lake")
    for day in pd.date_range(first, last, freq="D"):
        frame = candles.loc[candles["ts"].dt.date == day.date(), list(CANDLE_FIELDS)].reset_index(drop=True)
        store.write("candles", "BTCPERP", "1m", day.date(), frame, {})


def test_backtest_fails_clearly_without_a_model_pairs_or_data(env: dict[str, str]) -> None:
    home = Path(env["HELIOS_HOME"])
    days = ("--start", "2022-01-05", "--end", "2022-01-05")
    no_active = helios("backtest", *days, env=env)
    assert no_active.returncode == 1
    assert no_active.stderr.splitlines() == ["error: no ACTIVE model: pass --model VERSION (see `helios model list`)"]
    missing = helios("backtest", "--model", "20990101T000000Z-deadbeef", *days, env=env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"error: no model version 20990101T000000Z-deadbeef in {home / 'models'}"]
    version = make_bundle(home / "models", lean=0)  # untrained, names no training pairs
    no_pairs = helios("backtest", *days, env=env)
    assert no_pairs.returncode == 1 and no_pairs.stderr.splitlines() == [
        f"error: {version} names no training pairs: pass --pairs"
    ]
    no_data = helios("backtest", "--pairs", "btc-perp", *days, env=env)
    assert no_data.returncode == 1, no_data.stdout
    [line] = no_data.stderr.splitlines()
    assert line.startswith("error: ") and "BTCPERP" in line and "Traceback" not in no_data.stderr
    assert not (home / "backtests" / version / "2022-01-05_2022-01-05").exists()  # nothing left to block a rerun
    backwards = helios("backtest", "--pairs", "BTCPERP", "--start", "2022-01-05", "--end", "2022-01-04", env=env)
    assert backwards.stderr.splitlines() == ["error: --end 2022-01-04 is before --start 2022-01-05"]


def test_backtest_writes_the_report_and_prints_the_baselines(env: dict[str, str]) -> None:
    home = Path(env["HELIOS_HOME"])
    lake_with_candles(home, date(2022, 1, 4), date(2022, 1, 5))
    version = make_bundle(home / "models", lean=0)
    args = ("backtest", "--pairs", "BTCPERP", "--start", "2022-01-05", "--end", "2022-01-05", "--runs", "5")
    result = helios(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = home / "backtests" / version / "2022-01-05_2022-01-05"
    assert (out / "report.html").is_file() and (out / "report.json").is_file() and (out / "ledger.sqlite").is_file()
    lines = result.stdout.splitlines()
    assert lines[0] == f"backtesting {version} on BTCPERP over 2022-01-05 .. 2022-01-05 (UTC) into {out}"
    assert any(line.startswith("backtest 100%") for line in lines)  # progress while it runs
    [header] = [line for line in lines if "buy-and-hold" in line and "random p95" in line]
    assert header.split() == ["model", "buy-and-hold", "random", "p50", "random", "p95"]
    assert any(line.startswith("Sharpe ") for line in lines) and any(line.startswith("trades ") for line in lines)
    assert any(line.startswith("random entry: 5 draws (seed 0); The model ") for line in lines)  # the verdict
    assert lines[-1].startswith(f"report: {out / 'report.html'}")
    again = helios(*args, env=env)
    assert again.returncode == 1 and again.stderr.splitlines() == [
        f"error: {out} exists already: pass --out DIR for a new folder, or delete it"
    ]
    elsewhere = helios(*args, "--out", str(home / "other"), "--seed", "3", env=env)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (home / "other" / "report.html").is_file() and "5 draws (seed 3)" in elsewhere.stdout


def test_model_train_prints_the_candidate_the_baselines_and_the_gate(
    helios_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in (QUICK | FAST).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    run_market_data(
        settings, "BTCPERP", date(2022, 1, 3), date(2022, 1, 7), market_data_from(settings),
        dg.DagsterInstance.ephemeral(), False, PIPELINE,
    )  # fmt: skip
    env = QUICK | FAST | {"HELIOS_HOME": str(helios_env)}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    args = ("--folds", "1", "--test-days", "1", "--train-days", "2", "--runs", "5")
    result = helios("model", "train", *args, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    registry = Registry(settings.models_root)
    [candidate] = [v for v in registry.versions() if registry.get(v).meta["role"] == "candidate"]
    out = result.stdout
    assert f"candidate {candidate} (small" in out
    assert "majority" in out and "logistic_regression" in out and "lift over logistic_regression" in out
    assert "walk-forward folds" in out and "backtest on the test period: report" in out
    assert "gate passed" in out or f"gate refused {candidate}; ACTIVE stays unset. Reasons:" in out
    assert "model_candidate" in result.stderr  # the run's log is the progress

    listed = helios("model", "list", env=env)
    rows = listed.stdout.splitlines()
    assert rows[0].split()[:3] == ["version", "role", "checks"]
    [row] = rows[1:]  # the fold's model is hidden
    assert candidate in row and " candidate " in row and ("passed" in row or "refused" in row)
    every = helios("model", "list", "--walk-forward", "--reasons", env=env)
    assert any("walk-forward" in line and "fold 1" in line for line in every.stdout.splitlines())
    [fold] = [v for v in registry.versions() if v != candidate]
    refused = helios("model", "promote", fold, env=env)
    assert refused.returncode == 1 and "walk-forward fold's model" in refused.stderr
