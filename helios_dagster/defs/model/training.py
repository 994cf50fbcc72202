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
from helios_dagster.ml.data import Samples, Split, TrainingError, build_samples
from helios_dagster.ml.export import PARITY_TOLERANCE, export_onnx, on_cpu, parity
from helios_dagster.ml.model import PRESETS, HeliosNet, parameter_count
from helios_dagster.ml.train import TrainConfig, TrainResult, train
from helios_live.data.lake import Lake, PartitionFile
from helios_live.models.registry import Bundle, Registry, discard
from helios_live.settings import HeliosSettings

DATASET = "training_dataset"
CANDIDATE = "candidate"
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


Window = tuple[date, date]


def dataset_files(store: Lake, settings: HeliosSettings) -> tuple[list[PartitionFile], str]:
    """The training pairs' training_dataset files and their shared base timeframe; without
    HELIOS_TRAIN_PAIRS, every pair of the finest base timeframe in the lake."""
    files = [f for f in store.files(DATASET) if not settings.train.pairs or f.pair in settings.train.pairs]
    if not files:
        raise TrainingError("no training_dataset in the lake for the training pairs: materialise it first")
    if not settings.train.pairs:
        finest = min((f.timeframe for f in files), key=Timeframe.parse)
        files = [f for f in files if f.timeframe == finest]
    bases = {f.timeframe for f in files}
    if len(bases) > 1:
        raise TrainingError(f"training pairs mix base timeframes {sorted(bases)}; set HELIOS_TRAIN_PAIRS to one kind")
    return files, bases.pop()


def load_dataset(
    store: Lake, settings: HeliosSettings, window: Window | None = None
) -> tuple[list[pd.DataFrame], str, Window]:
    """The days `window` (first, last, inclusive) of training_dataset for the training pairs;
    by default the last HELIOS_TRAIN_DAYS. Returns (frames, base timeframe, window)."""
    files, base = dataset_files(store, settings)
    if window is None:
        last = max(f.day for f in files)
        window = (last - timedelta(days=settings.train.days - 1), last)
    first, last = window
    if last < first:
        raise TrainingError(f"the training window ends ({last}) before it starts ({first})")
    frames = []
    for pair in sorted({f.pair for f in files}):
        days = sorted((f for f in files if f.pair == pair and first <= f.day <= last), key=lambda f: f.day)
        if not days:
            continue
        versions = {store.meta(DATASET, pair, f.timeframe, f.day).get("feature_set_version") for f in days}
        if len(versions) != 1:
            raise TrainingError(f"{pair}'s training_dataset mixes feature sets {sorted(map(str, versions))}")
        frame = pd.concat([pd.read_parquet(f.path) for f in days], ignore_index=True)
        frame.attrs["feature_set_version"] = versions.pop()
        frames.append(frame)
    if not frames:
        raise TrainingError(f"no training_dataset rows for the training pairs in {first} .. {last}")
    return frames, base, window


def leakage_passed(store: Lake, pairs: list[str], base: str, window: Window) -> dict[str, Any]:
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


def train_and_register(
    settings: HeliosSettings,
    store: Lake,
    registry: Registry,
    log: Callable[[str], None],
    *,
    window: Window | None = None,
    role: str = CANDIDATE,
    extra: dict[str, Any] | None = None,
) -> Bundle:
    """Train a model on the days `window` of the dataset (default: the last HELIOS_TRAIN_DAYS),
    export and check it, and register the bundle with its `role` (it is not promoted here)."""
    frames, base, window = load_dataset(store, settings, window)
    pairs = [str(f["pair"].iloc[0]) for f in frames if len(f)]
    config = config_from(settings)
    samples = build_samples(frames, config.window, pd.Timedelta(Timeframe.parse(base).duration))
    log(f"training {config.preset} on {len(samples)} samples of {pairs} ({window[0]} .. {window[1]}, base {base})")
    result = train(samples, config, horizon(settings), log)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=_ensure(registry.root)))
    try:
        export_onnx(result.net, staged / "model.onnx", config.window)
        # CPU tensors: a bundle trained on a GPU loads on a host without one
        torch.save(on_cpu(result.net).state_dict(), staged / "model.pt")
        parity_which = result.split.test[:PARITY_SAMPLES]
        difference = parity(result.net, staged / "model.onnx", samples, parity_which)
        leakage = leakage_passed(store, pairs, base, window)
        verdict = "passed" if leakage["passed"] else "FAILED"
        log(f"ONNX parity {difference:.2e} (limit {PARITY_TOLERANCE:g}); leakage checks {verdict}")
        meta = bundle_meta(settings, config, result, base, pairs, window, difference, leakage)
        meta["role"] = role
        meta["periods"] = split_periods(samples, result.split)
        meta["feature_coverage"] = feature_coverage(samples)
        meta.update(extra or {})
        return registry.register(staged, meta)
    except BaseException:
        discard(staged)
        raise


def split_periods(samples: Samples, split: Split) -> dict[str, list[str]]:
    """The decision times (UTC, ISO) of the first and last sample of each part of the split."""
    out = {}
    for name, which in (("train", split.train), ("validation", split.validation), ("test", split.test)):
        if len(which):
            times = samples.t[which]
            out[name] = [_iso(times.min()), _iso(times.max())]
    return out


def training_identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What makes two bundles trained the same way (on different days): walk-forward evidence
    speaks for a candidate only when these agree."""
    keys = ("preset", "window", "base_timeframe", "pairs", "label", "feature_set_version", "train_config")
    return {k: meta.get(k) for k in keys}


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
    window: Window,
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
        "train_config": {"max_epochs": config.max_epochs, "folds": config.folds, "seed": config.seed},
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
        "training": result.run,
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
    net.load_state_dict(torch.load(bundle.path / "model.pt", weights_only=True, map_location="cpu"))
    trained = meta["training_window"]
    window = (date.fromisoformat(trained["first_day"]), date.fromisoformat(trained["last_day"]))
    frames, base, _ = load_dataset(store, settings, window)
    samples: Samples = build_samples(frames, int(meta["window"]), pd.Timedelta(Timeframe.parse(base).duration))
    which = np.arange(max(0, len(samples) - PARITY_SAMPLES), len(samples))
    return parity(net, bundle.model_path, samples, which)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _iso(t: np.datetime64) -> str:
    return str(pd.Timestamp(t).tz_localize("UTC").isoformat())
