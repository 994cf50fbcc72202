"""From the lake's training dataset to a registered bundle: train, export, check, register."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from helios_core.features.batch import block_features
from helios_core.features.leakage import lookahead_check, recursive_check, sample_positions
from helios_core.features.spec import FEATURE_SET_VERSION, TIMEFRAMES, max_warmup, vector_names
from helios_core.timeframes import Timeframe
from helios_dagster.ml.data import Samples, TrainingError, build_samples
from helios_dagster.ml.export import PARITY_TOLERANCE, export_onnx, parity
from helios_dagster.ml.model import PRESETS, HeliosNet, parameter_count
from helios_dagster.ml.train import TrainConfig, TrainResult, train
from helios_live.data.lake import Lake
from helios_live.models.registry import Bundle, Registry, discard
from helios_live.settings import HeliosSettings

DATASET = "training_dataset"
PARITY_SAMPLES = 1000


def config_from(settings: HeliosSettings) -> TrainConfig:
    return TrainConfig(
        preset=settings.model.preset,
        window=settings.model.window,
        max_epochs=settings.train.max_epochs,
        folds=settings.train.folds,
    )


def horizon(settings: HeliosSettings) -> pd.Timedelta:
    return pd.Timedelta(seconds=Timeframe.parse(settings.label.timeframe).seconds * settings.label.candles)


def load_dataset(store: Lake, settings: HeliosSettings) -> tuple[list[pd.DataFrame], str, tuple[date, date]]:
    """The last `train_days` of training_dataset for the training pairs, which must share a base
    timeframe; without HELIOS_TRAIN_PAIRS, every pair of the finest base timeframe in the lake.
    Returns (frames, base timeframe, (first day, last day))."""
    files = [f for f in store.files(DATASET) if not settings.train.pairs or f.pair in settings.train.pairs]
    if not files:
        raise TrainingError("no training_dataset in the lake for the training pairs: materialise it first")
    if not settings.train.pairs:
        finest = min((f.timeframe for f in files), key=Timeframe.parse)
        files = [f for f in files if f.timeframe == finest]
    bases = {f.timeframe for f in files}
    if len(bases) > 1:
        raise TrainingError(f"training pairs mix base timeframes {sorted(bases)}; set HELIOS_TRAIN_PAIRS to one kind")
    last = max(f.day for f in files)
    first = last - timedelta(days=settings.train.days - 1)
    frames = []
    for pair in sorted({f.pair for f in files}):
        days = sorted((f for f in files if f.pair == pair and f.day >= first), key=lambda f: f.day)
        if not days:
            continue
        versions = {store.meta(DATASET, pair, f.timeframe, f.day).get("feature_set_version") for f in days}
        if len(versions) != 1:
            raise TrainingError(f"{pair}'s training_dataset mixes feature sets {sorted(map(str, versions))}")
        frame = pd.concat([pd.read_parquet(f.path) for f in days], ignore_index=True)
        frame.attrs["feature_set_version"] = versions.pop()
        frames.append(frame)
    return frames, bases.pop(), (first, last)


def leakage_passed(store: Lake, pairs: list[str], base: str, window: tuple[date, date]) -> dict[str, Any]:
    """Re-run both leakage checks on the candles the dataset came from (10 times per pair)."""
    tf = Timeframe.parse(base)
    compute = partial(block_features, timeframe=tf)
    history, samples, failures = max_warmup(), 0, []
    for pair in pairs:
        candles = store.read_range("candles", pair, base, *window).reset_index(drop=True)
        positions = sample_positions(len(candles), history, 60, 10)
        for report in (
            lookahead_check(candles, compute, positions, history, 60),
            recursive_check(candles, compute, positions, history),
        ):
            samples += report.samples
            failures += [f"{pair} {report.check} {name}" for name, _ in report.failures]
    return {"passed": samples > 0 and not failures, "samples": samples, "failures": sorted(set(failures))[:20]}


def code_revision() -> str:
    try:
        # git from PATH on purpose: the revision is informational, "unknown" without git.
        command = ["git", "rev-parse", "--short", "HEAD"]
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=5)  # noqa: S603, S607
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def train_and_register(settings: HeliosSettings, store: Lake, registry: Registry, log: Callable[[str], None]) -> Bundle:
    """Train a candidate, export and check it, and register the bundle (it is not promoted here)."""
    frames, base, window = load_dataset(store, settings)
    pairs = [str(f["pair"].iloc[0]) for f in frames if len(f)]
    config = config_from(settings)
    samples = build_samples(frames, config.window, pd.Timedelta(Timeframe.parse(base).duration))
    log(f"training {config.preset} on {len(samples)} samples of {pairs} ({window[0]} .. {window[1]}, base {base})")
    result = train(samples, config, horizon(settings), log)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=_ensure(registry.root)))
    try:
        export_onnx(result.net, staged / "model.onnx", config.window)
        torch.save(result.net.state_dict(), staged / "model.pt")
        parity_which = result.split.test[:PARITY_SAMPLES]
        difference = parity(result.net, staged / "model.onnx", samples, parity_which)
        leakage = leakage_passed(store, pairs, base, window)
        verdict = "passed" if leakage["passed"] else "FAILED"
        log(f"ONNX parity {difference:.2e} (limit {PARITY_TOLERANCE:g}); leakage checks {verdict}")
        meta = bundle_meta(settings, config, result, base, pairs, window, difference, leakage)
        meta["feature_coverage"] = feature_coverage(samples)
        return registry.register(staged, meta)
    except BaseException:
        discard(staged)
        raise


def feature_coverage(samples: Samples) -> dict[str, float]:
    """Share of training rows in which each feature was valid; the live service masks the
    features a model never saw valid (helios_live.inference)."""
    share = samples.mask[samples.ends].reshape(len(samples.ends), -1).mean(axis=0)
    return {name: round(float(v), 6) for name, v in zip(vector_names(), share, strict=True)}


def bundle_meta(
    settings: HeliosSettings,
    config: TrainConfig,
    result: TrainResult,
    base: str,
    pairs: list[str],
    window: tuple[date, date],
    difference: float,
    leakage: dict[str, Any],
) -> dict[str, Any]:
    return {
        "feature_set_version": FEATURE_SET_VERSION,
        "feature_names": list(vector_names()),
        "timeframes": list(TIMEFRAMES),
        "window": config.window,
        "inputs": {"features": ["batch", len(TIMEFRAMES), config.window, 30], "mask": "same shape, 1 = valid"},
        "outputs": {
            "probabilities": ["BUY", "SELL", "HOLD"],
            "confidence": "P(argmax is right)",
            "attention": list(TIMEFRAMES),
        },
        "preset": config.preset,
        "parameters": parameter_count(result.net),
        "base_timeframe": base,
        "pairs": pairs,
        "label": {
            "timeframe": settings.label.timeframe,
            "candles": settings.label.candles,
            "up": settings.label.up,
            "down": settings.label.down,
        },
        "training_window": {"first_day": window[0].isoformat(), "last_day": window[1].isoformat()},
        "split": {k: int(len(v)) for k, v in vars(result.split).items() if v is not None},
        "metrics": json.loads(json.dumps(result.metrics, default=float)),
        "history": result.history,
        "parity": {"max_abs_difference": difference, "tolerance": PARITY_TOLERANCE, "samples": PARITY_SAMPLES},
        "checks": {"onnx_parity": difference <= PARITY_TOLERANCE, "leakage": bool(leakage["passed"])},
        "leakage": leakage,
        "code_revision": code_revision(),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def recheck_parity(bundle: Bundle, settings: HeliosSettings, store: Lake) -> float:
    """The parity check, redone from the registered files on real samples of the dataset."""
    meta = bundle.meta
    net = HeliosNet(PRESETS[meta["preset"]])
    net.load_state_dict(torch.load(bundle.path / "model.pt", weights_only=True))
    frames, base, _ = load_dataset(store, settings)
    samples: Samples = build_samples(frames, int(meta["window"]), pd.Timedelta(Timeframe.parse(base).duration))
    which = np.arange(max(0, len(samples) - PARITY_SAMPLES), len(samples))
    return parity(net, bundle.model_path, samples, which)


def gate(bundle: Bundle, settings: HeliosSettings) -> list[str]:
    """Reasons the bundle may not become ACTIVE; empty when it may."""
    reasons = []
    checks = bundle.meta.get("checks", {})
    for name in ("onnx_parity", "leakage"):
        if not checks.get(name):
            reasons.append(f"{name} check failed")
    test = bundle.meta.get("metrics", {}).get("test", {}).get("model", {})
    accuracy, ece = float(test.get("balanced_accuracy", 0.0)), float(test.get("ece", 1.0))
    if accuracy < settings.gate.min_balanced_accuracy:
        reasons.append(f"balanced accuracy {accuracy:.3f} < {settings.gate.min_balanced_accuracy}")
    if ece > settings.gate.max_ece:
        reasons.append(f"ECE {ece:.3f} > {settings.gate.max_ece}")
    return reasons


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
