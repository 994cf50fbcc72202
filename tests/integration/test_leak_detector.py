"""The whole pipeline's leak detector: a model trained on shuffled labels can know nothing, so if
it scores clearly above chance on its test period, or its backtest through the kernel beats the
random-entry baseline by more than noise, something carries the future (or the label) into the
inputs: a split that overlaps, a feature that sees ahead, a label in the vector."""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helios_core.features.spec import FEATURE_SET_VERSION, TIMEFRAMES
from helios_dagster.ml.data import build_samples, chronological_split
from helios_dagster.ml.export import export_onnx
from helios_dagster.ml.train import TrainConfig, evaluate, fit
from helios_live.backtest.backtester import Market
from helios_live.backtest.run import RANDOM_QUANTILE, run_backtest
from helios_live.models.registry import Registry
from tests.features_support import one_minute
from tests.live_support import live_settings
from tests.ml_support import dataset

HOUR = pd.Timedelta(hours=1)
CONFIG = TrainConfig(preset="small", window=8, max_epochs=2, min_train_samples=200)
UP = DOWN = 0.005  # ml_support's label: +/-0.5% within 60 one-minute candles


@pytest.fixture(scope="module")
def shuffled() -> pd.DataFrame:
    frame = dataset(days=5)
    labels = frame["label"].to_numpy().copy()
    known = ~np.isnan(labels)
    labels[known] = np.random.default_rng(11).permutation(labels[known])
    return frame.assign(label=labels)


def _chance_margin(labels: np.ndarray) -> float:
    """Three standard errors of balanced accuracy for a guesser that knows nothing: each class's
    recall of 1/3 has a variance (1/3)(2/3)/n_c, and the mean of three is taken."""
    counts = np.bincount(labels, minlength=3)
    variance = sum((1 / 3) * (2 / 3) / n for n in counts if n > 0) / 9
    return 3 * math.sqrt(variance)


def test_shuffled_labels_score_chance_on_the_test_period_and_trade_like_random_entry(
    shuffled: pd.DataFrame, tmp_path: Path
) -> None:
    samples = build_samples([shuffled], CONFIG.window, pd.Timedelta("1min"))
    split = chronological_split(samples, HOUR)  # the training's own split, purge and embargo
    net = fit(samples, split, CONFIG, lambda _: None).net
    scores = evaluate(net, samples, split.train, split.test, CONFIG.seed)
    margin = _chance_margin(samples.labels[split.test])
    # The network, and the pipeline's logistic regression on the same inputs: two epochs of a small
    # network miss a plain leak that the regression finds at once (a label copied into a feature).
    for name, figures in {"model": scores["model"], **scores["baselines"]}.items():  # type: ignore[dict-item]
        accuracy = float(figures["balanced_accuracy"])
        assert accuracy < 1 / 3 + margin, f"{name} scores {accuracy:.3f} on shuffled labels (chance + {margin:.3f})"

    # The same model through the kernel on its test period, as a backtest.
    home = tmp_path / "helios"
    values = {"live_min_confidence": 0.01, "live_warmup_days": 1, "risk_max_hold_s": 1800.0}
    settings = live_settings(home, model_window=CONFIG.window, **values)
    registry = Registry(settings.models_root)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=_made(settings.models_root)))
    export_onnx(net, staged / "model.onnx", CONFIG.window)
    meta = {
        "feature_set_version": FEATURE_SET_VERSION,
        "timeframes": list(TIMEFRAMES),
        "window": CONFIG.window,
        "preset": CONFIG.preset,
        "base_timeframe": "1m",
        "label": {"timeframe": "1m", "candles": 60, "up": UP, "down": DOWN},
        "checks": {"onnx_parity": True, "leakage": True},
    }
    version = registry.register(staged, meta).version
    t = samples.t[split.test]
    start = pd.Timestamp(t.min(), tz="UTC").floor("h").to_pydatetime()
    end = (pd.Timestamp(t.max(), tz="UTC").floor("min") + pd.Timedelta(minutes=1)).to_pydatetime()
    candles = one_minute()
    backtest = run_backtest(
        settings, model_version=version, pairs=["BTCPERP"], start=start, end=end, out_dir=home / "leak",
        market=Market("1m", {"BTCPERP": candles.loc[candles["ts"] < end].reset_index(drop=True)}), random_runs=40,
    )  # fmt: skip
    overall = backtest.report["metrics"]["overall"]
    assert overall["trades"] >= 10, "a model that never trades would pass for the wrong reason"
    rank = backtest.report["baselines"]["random_entry"]["model_sharpe_rank"]
    assert rank is not None and rank < RANDOM_QUANTILE, (rank, overall)
    assert start >= datetime(2022, 1, 1, tzinfo=UTC)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
