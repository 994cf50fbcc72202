"""The train job on the lake: candidate, parity check, walk-forward folds, backtests, the gate, the
registry, and the retrain sensor."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from helios_dagster.definitions import build_defs
from helios_dagster.defs.model.definitions import latest_candidate, new_data_request
from helios_dagster.defs.model.evidence import read_walk_forward
from helios_dagster.defs.model.gate import read_decision
from helios_dagster.defs.model.layout import Layout, Runs
from helios_dagster.resources import LakeResource, market_data_from
from helios_dagster.runs import RunFailed, run_market_data, run_training
from helios_dagster.schedules import PIPELINE, TRAIN_JOB
from helios_live.models.registry import Registry
from helios_live.settings import load_settings

QUICK = {
    "HELIOS_TRAIN_PAIRS": "BTCPERP",
    "HELIOS_TRAIN_MAX_EPOCHS": "2",
    "HELIOS_TRAIN_FOLDS": "1",
    "HELIOS_MODEL_WINDOW": "8",
    "HELIOS_LABEL_UP": "0.005",
    "HELIOS_LABEL_DOWN": "0.005",
    "HELIOS_LIVE_WARMUP_DAYS": "1",  # the backtests' warm-up: enough for the plumbing under test
    "HELIOS_LIVE_MIN_CONFIDENCE": "0.4",  # a briefly trained model is rarely surer: the backtests trade
}


@pytest.fixture
def trained_env(helios_env: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    for key, value in QUICK.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    instance = dg.DagsterInstance.ephemeral()
    run_market_data(
        settings, "BTCPERP", date(2022, 1, 3), date(2022, 1, 9), market_data_from(settings), instance, False, PIPELINE
    )
    return instance


def test_the_train_job_registers_checks_backtests_and_gates_a_model(
    trained_env: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    lake = LakeResource(root=str(settings.lake_root))
    assert isinstance(new_data_request(settings, Registry(settings.models_root), lake), dg.RunRequest)  # no model yet
    summary = run_training(
        settings, trained_env, False, Layout(folds=2, test_days=1, train_days=3), Runs(random_runs=10)
    )
    assert {c.name: c.passed for c in summary.checks} == {"model_onnx_parity": True}
    registry = Registry(settings.models_root)
    version = latest_candidate(registry)
    folds = [registry.get(v) for v in registry.versions() if v != version]
    meta = registry.get(version).meta
    assert meta["role"] == "candidate" and meta["feature_set_version"] == "1.0.0" and meta["window"] == 8
    assert meta["preset"] == "small"
    training = meta["training"]  # no GPU here: the CPU, in fp32, at a measured rate
    assert training["device"] == "cpu" and training["precision"] == "fp32" and training["samples_per_s"] > 0
    assert meta["checks"] == {"onnx_parity": True, "leakage": True}
    assert meta["parity"]["max_abs_difference"] <= 1e-5
    assert set(meta["metrics"]["test"]["baselines"]) == {"majority", "logistic_regression"}
    periods = meta["periods"]
    assert (
        periods["train"][0] < periods["train"][1] < periods["validation"][0] < periods["test"][0] < periods["test"][1]
    )
    assert periods["test"][1] <= "2022-01-10T00:00:00+00:00"  # decision times, UTC

    # Two walk-forward fold models, trained on rolling 3-day windows, never candidates.
    assert sorted((b.meta["role"], b.meta["walk_forward"]["fold"], b.meta["training_window"]["first_day"],
                   b.meta["training_window"]["last_day"]) for b in folds) == [
        ("walk-forward", 1, "2022-01-05", "2022-01-07"),
        ("walk-forward", 2, "2022-01-06", "2022-01-08"),
    ]  # fmt: skip
    walk = summary.materialized["walk_forward"]
    evidence = read_walk_forward(Path(str(walk["evidence"])))
    assert [(f.backtest.start, f.backtest.end) for f in evidence.folds] == [
        ("2022-01-08T00:00:00+00:00", "2022-01-09T00:00:00+00:00"),
        ("2022-01-09T00:00:00+00:00", "2022-01-10T00:00:00+00:00"),
    ]
    assert {f.backtest.version for f in evidence.folds} == {b.version for b in folds}
    for k in (1, 2):
        report = Path(str(walk[f"fold_{k}_report"]))
        assert report.is_file() and report.with_suffix(".json").is_file()
        assert report.is_relative_to(settings.home / "backtests" / "walk-forward")
    assert "| all |" in str(walk["folds"])
    tested = summary.materialized["candidate_backtest"]
    assert tested["version"] == version and Path(str(tested["report"])).is_file()
    assert tested["active_compared"] == "no ACTIVE model to compare with"

    # The decision, with every number behind it, beside the bundle and in the history.
    decision = read_decision(registry.get(version).path)
    assert decision is not None and decision["version"] == version
    assert decision["figures"]["walk_forward"]["aggregate"]["folds"] == 2
    assert decision["figures"]["test_period"]["candidate"]["report"] == tested["report"]
    event = registry.history()[-1]
    assert event["version"] == version and event["action"] == ("promote" if decision["promote"] else "reject")
    assert (registry.active() == version) == decision["promote"]
    skip = new_data_request(settings, registry, lake)
    assert isinstance(skip, dg.SkipReason) and "0 new rows" in str(skip.skip_message)

    # The gate alone, again, with a threshold nobody meets: it reads the evidence the run left
    # in the instance, refuses, and ACTIVE does not move.
    monkeypatch.setenv("HELIOS_GATE_MIN_BALANCED_ACCURACY", "0.99")
    before = registry.active()
    job = build_defs(load_settings()).resolve_job_def(TRAIN_JOB)
    assert job.execute_in_process(instance=trained_env, asset_selection=[dg.AssetKey("active_model")]).success
    assert registry.active() == before
    assert registry.history()[-1]["action"] == "reject" and "balanced accuracy" in registry.history()[-1]["reason"]
    assert read_decision(registry.get(version).path)["promote"] is False  # type: ignore[index]


def test_training_without_a_dataset_fails_clearly(helios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RunFailed, match="no training_dataset in the lake"):
        run_training(load_settings(), dg.DagsterInstance.ephemeral(), verbose=False)
    assert Registry(load_settings().models_root).versions() == []
