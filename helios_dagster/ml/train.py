"""Training: class-weighted AdamW with early stopping, walk-forward folds, baselines, metrics.

Seeded and deterministic on CPU. On a CUDA device it uses bf16 autocast and pinned memory
(`helios_dagster.ml.step`); the same code runs on either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from helios_core.features.spec import BLOCK, TIMEFRAMES
from helios_dagster.ml.data import Samples, Split, TrainingError, chronological_split, walk_forward
from helios_dagster.ml.metrics import baselines, classification_metrics
from helios_dagster.ml.model import CLASSES, PRESETS, HeliosNet
from helios_dagster.ml.step import (
    NonFiniteLoss,
    Throughput,
    describe,
    device,
    objective,
    precision_for,
    seed_everything,
    step,
    to_device,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "small"
    window: int = 16
    batch_size: int = 256
    max_epochs: int = 20
    patience: int = 3
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    confidence_weight: float = 0.5
    folds: int = 3
    seed: int = 7
    min_train_samples: int = 500
    precision: str = "auto"  # bf16 autocast on CUDA, fp32 elsewhere; or "fp32" / "bf16"


@dataclass
class TrainResult:
    net: HeliosNet
    split: Split
    metrics: dict[str, object] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    run: dict[str, object] = field(default_factory=dict)  # device, precision, throughput of the final fit


@dataclass
class Fitted:
    net: HeliosNet
    history: list[dict[str, float]]
    run: dict[str, object]


def normalisation(samples: Samples, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each feature over its valid values at the training samples' rows."""
    vectors, mask = samples.vectors[rows], samples.mask[rows]
    count = mask.sum(axis=0)
    mean = np.divide((vectors * mask).sum(axis=0), count, out=np.zeros_like(count), where=count > 0)
    var = np.divide((((vectors - mean) * mask) ** 2).sum(axis=0), count, out=np.ones_like(count), where=count > 0)
    std = np.where(var > 1e-16, np.sqrt(var), 1.0)
    shape = (len(TIMEFRAMES), 1, BLOCK)
    return torch.tensor(mean, dtype=torch.float32).reshape(shape), torch.tensor(std, dtype=torch.float32).reshape(shape)


def _tensors(samples: Samples, which: np.ndarray, target: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return to_device(*samples.batch(which), target)


def predict(
    net: HeliosNet, samples: Samples, which: np.ndarray, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and confidence for samples `which`."""
    target = next(net.parameters()).device
    net.eval()
    probabilities, confidence = [], []
    with torch.no_grad():
        for start in range(0, len(which), batch_size):
            x, m = _tensors(samples, which[start : start + batch_size], target)
            logits, conf, _ = net(x, m)
            probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
            confidence.append(torch.sigmoid(conf.float()).cpu().numpy())
    if not probabilities:
        return np.zeros((0, CLASSES)), np.zeros(0)
    return np.concatenate(probabilities), np.concatenate(confidence)


def _check_trainable(samples: Samples, split: Split, config: TrainConfig, need_test: bool) -> None:
    if len(split.train) < config.min_train_samples:
        raise TrainingError(f"{len(split.train)} training samples; at least {config.min_train_samples} are needed")
    if len(split.validation) == 0 or (need_test and len(split.test) == 0):
        raise TrainingError("no validation or test samples after purge and embargo: the data span is too short")
    classes = np.unique(samples.labels[split.train])
    if len(classes) < 2:
        raise TrainingError(f"the training labels hold a single class ({classes.tolist()}): nothing to learn")


def fit(samples: Samples, split: Split, config: TrainConfig, log: Log) -> Fitted:
    """Train on `split.train`, early-stopping on `split.validation` loss; the best epoch is kept."""
    _check_trainable(samples, split, config, need_test=False)
    target = device()
    precision = precision_for(target, config.precision)
    seed_everything(config.seed, target)
    mean, std = normalisation(samples, samples.ends[split.train])
    net = HeliosNet(PRESETS[config.preset], mean, std).to(target)
    loss = objective(samples.labels[split.train], CLASSES, target, config.confidence_weight)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    labels = torch.from_numpy(samples.labels)
    best, best_state, stale, history = math.inf, None, 0, []
    throughput = Throughput()
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = rng.permutation(split.train)
        total, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            started = time.perf_counter()
            which = order[start : start + config.batch_size]
            x, m = _tensors(samples, which, target)
            try:
                value = step(net, optimiser, loss, (x, m, labels[which].to(target)), precision)
            except NonFiniteLoss as error:
                raise TrainingError(f"{error} at epoch {epoch}; nothing was registered") from None
            throughput.timed(len(which), started)
            total += value * len(which)
            seen += len(which)
        probabilities, _ = predict(net, samples, split.validation)
        val_labels = samples.labels[split.validation]
        val_loss = float(
            loss.class_loss(
                torch.log(torch.from_numpy(probabilities).clamp_min(1e-7)).to(target),
                torch.from_numpy(val_labels).to(target),
            ).item()
        )
        val_accuracy = float(classification_metrics(val_labels, probabilities)["balanced_accuracy"])  # type: ignore[arg-type]
        train_loss = total / seen
        history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_balanced_accuracy": val_accuracy}
        )
        log(
            f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, val balanced acc. {val_accuracy:.3f}"
        )
        if val_loss < best - 1e-4:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                log(f"early stop after epoch {epoch}: no validation improvement in {config.patience} epochs")
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    run = {
        "device": describe(target),
        "precision": precision,
        "samples_per_s": round(throughput.per_second, 1),
        "torch": torch.__version__,
    }
    log(f"trained on {run['device']} in {precision}: {run['samples_per_s']} samples/s")
    return Fitted(net.eval(), history, run)


def evaluate(
    net: HeliosNet, samples: Samples, train: np.ndarray, evaluation: np.ndarray, seed: int
) -> dict[str, object]:
    probabilities, confidence = predict(net, samples, evaluation)
    model = classification_metrics(samples.labels[evaluation], probabilities, confidence)
    base = baselines(
        samples.last_vectors(train),
        samples.labels[train],
        samples.last_vectors(evaluation),
        samples.labels[evaluation],
        seed,
    )
    lift = {
        name: {k: float(model[k]) - float(b[k]) for k in ("balanced_accuracy", "macro_f1")}  # type: ignore[arg-type]
        for name, b in base.items()
    }
    return {"model": model, "baselines": base, "lift": lift}


def train(samples: Samples, config: TrainConfig, embargo: pd.Timedelta, log: Log) -> TrainResult:
    """Walk-forward folds for the record, then the final model on train/validation, tested once."""
    split = chronological_split(samples, embargo)
    _check_trainable(samples, split, config, need_test=True)
    folds = []
    for k, fold in enumerate(walk_forward(samples, config.folds, embargo, samples.t[split.validation[0]]), start=1):
        if len(fold.train) < config.min_train_samples or len(np.unique(samples.labels[fold.train])) < 2:
            log(f"fold {k}: skipped ({len(fold.train)} training samples)")
            continue
        log(f"fold {k}: {len(fold.train)} train / {len(fold.validation)} validation samples")
        fold_net = fit(samples, fold, config, log).net
        folds.append({"fold": k, **evaluate(fold_net, samples, fold.train, fold.validation, config.seed)})
    log(f"final model: {len(split.train)} train / {len(split.validation)} validation / {len(split.test)} test samples")
    final = fit(samples, split, config, log)
    test = evaluate(final.net, samples, split.train, split.test, config.seed)
    return TrainResult(final.net, split, {"folds": folds, "test": test}, final.history, final.run)
