"""features, labels and training_dataset run by Dagster on the sample data."""

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from helios_core.features.spec import FEATURE_SET_VERSION, vector_names
from helios_dagster.resources import market_data_from
from helios_dagster.runs import run_market_data
from helios_dagster.schedules import PIPELINE
from helios_live.data.lake import Lake
from helios_live.settings import load_settings


def pipeline(pair: str, first: date, last: date, instance: dg.DagsterInstance | None = None):  # type: ignore[no-untyped-def]
    settings = load_settings()
    instance = instance or dg.DagsterInstance.ephemeral()
    return run_market_data(
        settings, pair, first, last, market_data_from(settings), instance, verbose=False, job_name=PIPELINE
    )


@pytest.fixture
def reference(helios_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELIOS_REFERENCE_PAIR", "ETHBTC")
    return helios_env


def test_features_labels_and_dataset_are_written_with_all_checks_passing(reference: Path) -> None:
    pipeline("ETHBTC", date(2018, 1, 10), date(2018, 1, 16))
    summary = pipeline("ADABTC", date(2018, 1, 12), date(2018, 1, 16))
    outcomes = {c.name: c for c in summary.checks}
    for name in ("features_expectations", "features_lookahead", "features_recursive", "labels_expectations"):
        assert outcomes[name].passed, (name, outcomes[name].metadata)
    assert outcomes["features_lookahead"].metadata["samples"] > 0
    store = Lake(load_settings().lake_root)
    frame, meta = store.read("training_dataset", "ADABTC", "5m", date(2018, 1, 16))
    assert meta["feature_set_version"] == FEATURE_SET_VERSION and meta["purge_column"] == "label_end"
    assert list(frame.columns[:3]) == ["pair", "ts", "t"]
    assert set(vector_names()) <= set(frame.columns)
    assert frame["ts"].is_monotonic_increasing and (frame["label_end"] - frame["t"] == pd.Timedelta(hours=1)).all()
    assert frame["5m.corr_ref_30"].notna().mean() > 0.9  # against ETH-BTC, lake-read by the asset
    assert frame["1m.ret_1"].isna().all()  # a 5m source has no 1m block: masked, not made up
    values = frame[list(vector_names())].to_numpy()
    assert not np.isinf(values).any()


def test_the_last_day_has_no_made_up_labels(reference: Path) -> None:
    summary = pipeline("ETHBTC", date(2018, 1, 29), date(2018, 1, 30))
    lookahead = {c.name: c for c in summary.checks}["features_lookahead"]
    # Two days of 5m data hold no time with the full warm-up behind it: not checked, said so.
    assert (lookahead.passed, lookahead.severity, lookahead.metadata["samples"]) == (False, "WARN", 0)
    store = Lake(load_settings().lake_root)
    labels, _ = store.read("labels", "ETHBTC", "5m", date(2018, 1, 30))
    data_end = labels["t"].iloc[-1]
    unlabelled = labels.loc[labels["label"].isna()]
    assert len(unlabelled) == 12 and (unlabelled["label_end"] > data_end).all()


def test_a_day_computed_alone_equals_the_same_day_in_a_longer_run(helios_env: Path) -> None:
    pipeline("BTCPERP", date(2022, 1, 5), date(2022, 1, 8))
    store = Lake(load_settings().lake_root)
    long_run, _ = store.read("features", "BTCPERP", "1m", date(2022, 1, 8))
    pipeline("BTCPERP", date(2022, 1, 8), date(2022, 1, 8))
    alone, _ = store.read("features", "BTCPERP", "1m", date(2022, 1, 8))
    names = list(vector_names())
    a, b = alone[names].to_numpy(), long_run[names].to_numpy()
    assert (np.isnan(a) == np.isnan(b)).all()
    assert np.nanmax(np.abs(a - b)) < 1e-7  # the warm-up it reads from earlier days suffices
