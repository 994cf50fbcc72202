"""Training samples from the lake's training_dataset: windows, splits with purge and embargo."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helios_core.errors import HeliosError
from helios_core.features.spec import BLOCK, FEATURE_SET_VERSION, TIMEFRAMES, vector_names
from helios_dagster.ml.step import windows


class TrainingError(HeliosError):
    """The data cannot train a model (too few samples, one class, a feature-set mismatch)."""


@dataclass
class Samples:
    """Sample i is the window of `window` rows ending at row `ends[i]` of `vectors`/`mask`."""

    vectors: np.ndarray  # (rows, timeframes, 30) float32, invalid = 0
    mask: np.ndarray  # (rows, timeframes, 30) float32
    ends: np.ndarray  # row index of each sample's decision time
    labels: np.ndarray  # (samples,) int64
    t: np.ndarray  # decision times, datetime64[ns]
    label_end: np.ndarray  # datetime64[ns]
    window: int

    def __len__(self) -> int:
        return len(self.ends)

    def batch(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, mask) for samples `which`: (batch, timeframes, window, 30)."""
        return windows(self.vectors, self.mask, self.ends[which], self.window)

    def last_vectors(self, which: np.ndarray) -> np.ndarray:
        """The decision-time vector and its mask, flattened: the baselines' input."""
        end = self.ends[which]
        return np.concatenate([self.vectors[end].reshape(len(end), -1), self.mask[end].reshape(len(end), -1)], axis=1)


def build_samples(frames: list[pd.DataFrame], window: int, step: pd.Timedelta) -> Samples:
    """Samples from time-ordered dataset frames (one per pair): windows of `window` consecutive
    rows (no gap inside), a label at the last row, at least one valid feature."""
    names = list(vector_names())
    values, masks, ends, labels, times, label_ends = [], [], [], [], [], []
    offset = 0
    for frame in frames:
        if frame.empty:
            continue
        version = frame.attrs.get("feature_set_version", FEATURE_SET_VERSION)
        if version != FEATURE_SET_VERSION:
            raise TrainingError(f"dataset has feature set {version}, this code computes {FEATURE_SET_VERSION}")
        raw = frame[names].to_numpy(dtype=np.float32).reshape(len(frame), len(TIMEFRAMES), BLOCK)
        valid = np.isfinite(raw)
        values.append(np.where(valid, raw, 0.0).astype(np.float32))
        masks.append(valid.astype(np.float32))
        t = frame["t"].to_numpy(dtype="datetime64[ns]")
        contiguous = np.r_[False, np.diff(t) == step.to_timedelta64()]
        run = np.zeros(len(t), dtype=int)  # consecutive rows ending here
        for i in range(1, len(t)):
            run[i] = run[i - 1] + 1 if contiguous[i] else 0
        label = frame["label"].to_numpy(dtype="float64", na_value=np.nan)
        ok = (run >= window - 1) & np.isfinite(label) & (frame["n_valid"].to_numpy() > 0)
        index = np.flatnonzero(ok)
        ends.append(index + offset)
        labels.append(label[index].astype(np.int64))
        times.append(t[index])
        label_ends.append(frame["label_end"].to_numpy(dtype="datetime64[ns]")[index])
        offset += len(frame)
    if not ends:
        raise TrainingError("the training dataset is empty: materialise training_dataset first")
    order = np.argsort(np.concatenate(times), kind="stable")
    return Samples(
        np.concatenate(values),
        np.concatenate(masks),
        np.concatenate(ends)[order],
        np.concatenate(labels)[order],
        np.concatenate(times)[order],
        np.concatenate(label_ends)[order],
        window,
    )


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # empty for a fold


def _purged(samples: Samples, train: np.ndarray, before: np.datetime64) -> np.ndarray:
    """Drop training samples whose label window reaches into the next period."""
    kept: np.ndarray = train[samples.label_end[train] <= before]
    return kept


def chronological_split(samples: Samples, embargo: pd.Timedelta, validation: float = 0.15, test: float = 0.15) -> Split:
    """Train, validation and test in time order; each earlier part purged of samples whose
    label ends after the next part starts, and an embargo of `embargo` after each part."""
    t = samples.t
    start, end = t[0], t[-1]
    span = end - start
    val_start = start + span * (1 - validation - test)
    test_start = start + span * (1 - test)
    gap = embargo.to_timedelta64()
    train = _purged(samples, np.flatnonzero(t < val_start), val_start)
    val = np.flatnonzero((t >= val_start + gap) & (t < test_start))
    val = _purged(samples, val, test_start)
    tst = np.flatnonzero(t >= test_start + gap)
    return Split(train, val, tst)


def walk_forward(samples: Samples, folds: int, embargo: pd.Timedelta, until: np.datetime64) -> list[Split]:
    """Expanding-window folds over samples before `until`: fold k trains on the first k parts
    (purged) and validates on part k + 1 (after the embargo)."""
    t = samples.t
    region = np.flatnonzero(t < until)
    if len(region) == 0:
        return []
    start, end = t[region[0]], t[region[-1]]
    edges = [start + (end - start) * k / (folds + 1) for k in range(folds + 2)]
    gap = embargo.to_timedelta64()
    splits = []
    for k in range(1, folds + 1):
        train = _purged(samples, region[t[region] < edges[k]], edges[k])
        val = region[(t[region] >= edges[k] + gap) & (t[region] < edges[k + 1])]
        splits.append(Split(train, val))
    return splits
