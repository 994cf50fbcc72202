"""`surveillance_anomaly_model` materialised on a small lake of real BTC-PERP candles, its parity
check, and the live scorer loading what it wrote and scoring through ONNX."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from helios_core.surveillance.anomaly import market_stats_batch
from helios_dagster.defs.surveillance.anomaly import ANOMALY_ASSETS, ANOMALY_CHECKS, ASSET, anomaly_root
from helios_dagster.resources import LakeResource
from helios_live.data.lake import Lake
from helios_live.surveillance.anomaly import AnomalyModel, AnomalyScorer, active_directory
from tests.conftest import sample

BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"


def build_lake(root: Path, days: int) -> Lake:
    lake, candles = Lake(root), sample(BTC)
    for offset in range(days):
        day = date(2022, 1, 3) + timedelta(days=offset)
        rows = candles[candles["ts"].dt.date == day].reset_index(drop=True)
        lake.write("candles", "BTCPERP", "1m", day, rows, {"source": "sample"})
    return lake


def materialise(tmp_path: Path, days: int) -> dg.ExecuteInProcessResult:
    build_lake(tmp_path / "lake", days)
    config = {"pairs": ["BTCPERP"], "home": str(tmp_path / "home"), "days": 30}
    return dg.materialize(
        [*ANOMALY_ASSETS, *ANOMALY_CHECKS],
        resources={"lake": LakeResource(root=str(tmp_path / "lake"))},
        run_config={"ops": {ASSET: {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_the_asset_trains_exports_checks_and_the_live_scorer_loads_it(tmp_path: Path) -> None:
    result = materialise(tmp_path, days=2)
    assert result.success
    metadata = result.asset_materializations_for_node(ASSET)[0].metadata
    figures = {k: v.value for k, v in metadata.items()}
    assert isinstance(figures["rows"], int) and figures["rows"] > 2000 and figures["pairs"] == ["BTCPERP"]
    parity, rate = float(str(figures["parity_max_abs_difference"])), float(str(figures["anomaly_rate"]))
    assert parity <= 1e-6 and abs(rate - 0.05) <= 0.01
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.metadata

    root = anomaly_root(tmp_path / "home")
    directory = active_directory(root)
    assert directory is not None and (directory / "model.onnx").is_file()
    model = AnomalyModel.load(directory)
    assert model is not None
    stats = market_stats_batch(sample(BTC).iloc[-3000:].reset_index(drop=True))
    stats = stats[np.all(np.isfinite(stats), axis=1)]
    one, other = model.score(stats[0]), model.score(stats[1])
    assert one.method == "isolation_forest" and one.score is not None and 0 <= (one.risk or 0) <= 100
    # The plan normalised scores per batch; here a sample's score is its own, alone or among others.
    in_batch = model.score_samples(np.vstack([stats[500:700], stats[:1], stats[900:1000]]))[200]
    assert in_batch == pytest.approx(one.score, abs=1e-6)
    assert other.score != one.score
    extreme = stats[0] * 50
    assert model.score(extreme).anomalous and model.score(extreme).severity is not None
    assert AnomalyScorer.from_root(root).score(stats[0]) == one


def test_without_onnx_the_scorer_falls_back_to_the_stored_sigma_model(tmp_path: Path) -> None:
    assert materialise(tmp_path, days=1).success
    root = anomaly_root(tmp_path / "home")
    directory = active_directory(root)
    assert directory is not None
    (directory / "model.onnx").unlink()
    verdict = AnomalyScorer.from_root(root).score(np.zeros(8))
    assert verdict.method == "sigma" and verdict.score is not None


def test_too_few_rows_fail_clearly(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    rows = sample(BTC).iloc[:300].reset_index(drop=True)
    lake.write("candles", "BTCPERP", "1m", rows["ts"].dt.date.iloc[-1], rows, {"source": "sample"})
    result = dg.materialize(
        ANOMALY_ASSETS,
        resources={"lake": LakeResource(root=str(tmp_path / "lake"))},
        run_config={"ops": {ASSET: {"config": {"pairs": ["BTCPERP"], "home": str(tmp_path / "home")}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "at least 500 are needed" in failure.to_string()
    assert active_directory(anomaly_root(tmp_path / "home")) is None


def test_the_parity_rule_refuses_any_row_off_or_flagged_differently() -> None:
    from helios_dagster.defs.surveillance.anomaly import parity_problem

    expected = np.linspace(-0.7, -0.3, 10_000)
    assert parity_problem(expected + 1e-8, expected, -0.6) == ""  # the float32 sum of the leaves
    off = expected.copy()
    off[17] += 3e-4  # one row down another path, as skl2onnx's float32 graph did
    assert "exceeds" in parity_problem(off, expected, -0.6)
    edge = np.array([-0.6 - 1e-7, -0.5])
    assert "flag differs on 1 rows" in parity_problem(edge + 2e-7, edge, -0.6)
