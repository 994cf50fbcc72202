"""The train job on the lake: candidate, parity check, gate, registry, and the retrain sensor."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from helios_dagster.defs.model.definitions import new_data_request
from helios_dagster.defs.model.training import gate
from helios_dagster.resources import LakeResource, market_data_from
from helios_dagster.runs import RunFailed, run_market_data, run_training
from helios_dagster.schedules import PIPELINE
from helios_live.models.registry import Registry
from helios_live.settings import load_settings

QUICK = {
    "HELIOS_TRAIN_PAIRS": "BTCPERP",
    "HELIOS_TRAIN_MAX_EPOCHS": "2",
    "HELIOS_TRAIN_FOLDS": "1",
    "HELIOS_MODEL_WINDOW": "8",
    "HELIOS_LABEL_UP": "0.005",
    "HELIOS_LABEL_DOWN": "0.005",
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


def test_the_train_job_registers_checks_and_gates_a_model(
    trained_env: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    lake = LakeResource(root=str(settings.lake_root))
    assert isinstance(new_data_request(settings, Registry(settings.models_root), lake), dg.RunRequest)  # no model yet
    summary = run_training(settings, trained_env, verbose=False)
    assert {c.name: c.passed for c in summary.checks} == {"model_onnx_parity": True}
    registry = Registry(settings.models_root)
    [version] = registry.versions()
    meta = registry.get(version).meta
    assert meta["feature_set_version"] == "1.0.0" and meta["window"] == 8 and meta["preset"] == "small"
    assert meta["checks"] == {"onnx_parity": True, "leakage": True}
    assert meta["parity"]["max_abs_difference"] <= 1e-5
    assert set(meta["metrics"]["test"]["baselines"]) == {"majority", "logistic_regression"}
    decision = registry.history()[-1]
    expected = "reject" if gate(registry.get(version), settings) else "promote"
    assert decision["action"] == expected and decision["version"] == version
    skip = new_data_request(settings, registry, lake)
    assert isinstance(skip, dg.SkipReason) and "0 new rows" in str(skip.skip_message)

    # A gate nobody can pass: the next candidate is registered but ACTIVE does not move.
    monkeypatch.setenv("HELIOS_GATE_MIN_BALANCED_ACCURACY", "0.99")
    before = registry.active()
    run_training(load_settings(), trained_env, verbose=False)
    assert len(registry.versions()) == 2 and registry.active() == before
    assert registry.history()[-1]["action"] == "reject" and "balanced accuracy" in registry.history()[-1]["reason"]


def test_training_without_a_dataset_fails_clearly(helios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RunFailed, match="no training_dataset in the lake"):
        run_training(load_settings(), dg.DagsterInstance.ephemeral(), verbose=False)
    assert Registry(load_settings().models_root).versions() == []
