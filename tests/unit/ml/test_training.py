import json

import numpy as np
import pandas as pd
import pytest

from helios_dagster.ml.data import TrainingError, build_samples, chronological_split, walk_forward
from helios_dagster.ml.metrics import expected_calibration_error
from helios_dagster.ml.train import TrainConfig, train
from tests.ml_support import balanced_enough, dataset

HOUR = pd.Timedelta(hours=1)
QUICK = TrainConfig(preset="small", window=8, max_epochs=2, folds=2, min_train_samples=200)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    out = dataset(days=6)
    assert balanced_enough(out)
    return out


def test_splits_are_time_ordered_purged_and_embargoed(frame: pd.DataFrame) -> None:
    samples = build_samples([frame], 8, pd.Timedelta("1min"))
    split = chronological_split(samples, HOUR)
    t, end = samples.t, samples.label_end
    assert t[split.train].max() < t[split.validation].min() < t[split.validation].max() < t[split.test].min()
    assert end[split.train].max() <= t[split.validation].min()  # purged: no label reaches into validation
    assert t[split.test].min() - t[split.validation].max() >= HOUR.to_timedelta64()  # embargo
    for fold in walk_forward(samples, 3, HOUR, t[split.validation[0]]):
        assert end[fold.train].max() <= t[fold.validation].min()


def test_training_is_deterministic_and_reports_metrics_and_baselines(frame: pd.DataFrame) -> None:
    samples = build_samples([frame], 8, pd.Timedelta("1min"))
    logs: list[str] = []
    first = train(samples, QUICK, HOUR, logs.append)
    second = train(samples, QUICK, HOUR, lambda _: None)
    assert json.dumps(first.metrics, default=float) == json.dumps(second.metrics, default=float)
    test = first.metrics["test"]
    assert set(test["model"]) >= {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "log_loss",
        "ece",
        "confusion_matrix",
        "confidence_ece",
    }
    assert set(test["baselines"]) == {"majority", "logistic_regression"}
    assert test["baselines"]["majority"]["balanced_accuracy"] == pytest.approx(1 / 3)
    assert len(first.metrics["folds"]) == 2
    assert any(line.startswith("epoch 1:") for line in logs)


def test_too_few_samples_one_class_and_a_feature_set_mismatch_are_refused(frame: pd.DataFrame) -> None:
    samples = build_samples([frame.head(600)], 8, pd.Timedelta("1min"))
    with pytest.raises(TrainingError, match="training samples; at least"):
        train(samples, TrainConfig(window=8, min_train_samples=10_000), HOUR, print)
    one_class = frame.assign(label=frame["label"].where(frame["label"].isna(), 2))
    with pytest.raises(TrainingError, match="single class"):
        train(build_samples([one_class], 8, pd.Timedelta("1min")), QUICK, HOUR, print)
    stale = frame.copy()
    stale.attrs["feature_set_version"] = "0.9.0"
    with pytest.raises(TrainingError, match="feature set 0.9.0"):
        build_samples([stale], 8, pd.Timedelta("1min"))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_nan_loss_stops_training(frame: pd.DataFrame) -> None:
    samples = build_samples([frame], 8, pd.Timedelta("1min"))
    samples.vectors[samples.ends[:50]] = np.inf  # corrupt input that got past every check
    with pytest.raises(TrainingError, match="loss became nan"):
        train(samples, QUICK, HOUR, print)


def test_expected_calibration_error() -> None:
    confidence = np.array([0.9] * 10 + [0.6] * 10)
    correct = np.array([1] * 9 + [0] + [1] * 6 + [0] * 4, dtype=float)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(10, 0.9), np.zeros(10)) == pytest.approx(0.9)
