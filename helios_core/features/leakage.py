"""Leakage checks in the manner of freqtrade's lookahead- and recursive-analysis.

Both take any `compute` function (candles -> features, rows aligned with candles), so the
same checks run on the real feature set and on a deliberately leaking one in the tests.

- look-ahead: at sampled t, features computed on `[t - history, t]` must equal those computed
  on `[t - history, t + future]`: same past, more future; any difference is a leak.
- recursive: at sampled t, features computed from only `history` candles before t must equal
  those computed from the whole history within `tolerance`: warm-up too short, or a value
  that depends on where the data starts, shows here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helios_core.features.spec import CONVERGENCE

Compute = Callable[[pd.DataFrame], pd.DataFrame]

# Absolute, on features of order 1e-4 .. 1: ten times what an EMA keeps of its start after
# the declared warm-up (spec.CONVERGENCE), so a correct feature passes with margin.
RECURSIVE_TOLERANCE = 10 * CONVERGENCE


@dataclass
class LeakageReport:
    """Per-feature worst difference and the (feature, t) pairs that failed."""

    check: str
    samples: int
    worst: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.samples > 0 and not self.failures


def _compare(report: LeakageReport, t: object, a: pd.Series, b: pd.Series, tolerance: float) -> None:
    for name in a.index:
        x, y = a[name], b[name]
        if np.isnan(x) and np.isnan(y):
            continue
        diff = np.inf if np.isnan(x) != np.isnan(y) else abs(float(x) - float(y))
        report.worst[name] = max(report.worst.get(name, 0.0), diff)
        if diff > tolerance:
            report.failures.append((str(name), str(t)))


def sample_positions(n: int, history: int, future: int, samples: int, seed: int = 0) -> list[int]:
    """Up to `samples` row positions with `history` rows before and `future` rows after."""
    lo, hi = history, n - future
    if hi <= lo:
        return []
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(lo, hi), size=min(samples, hi - lo), replace=False).tolist())


def lookahead_check(
    candles: pd.DataFrame, compute: Compute, positions: list[int], history: int, future: int
) -> LeakageReport:
    report = LeakageReport("lookahead", len(positions))
    for i in positions:
        past = compute(candles.iloc[i - history : i + 1]).iloc[-1]
        with_future = compute(candles.iloc[i - history : i + future + 1]).iloc[history]
        _compare(report, candles["ts"].iloc[i], past, with_future, 0.0)
    return report


def recursive_check(
    candles: pd.DataFrame, compute: Compute, positions: list[int], history: int, tolerance: float = RECURSIVE_TOLERANCE
) -> LeakageReport:
    report = LeakageReport("recursive", len(positions))
    full = compute(candles)
    for i in positions:
        limited = compute(candles.iloc[i - history + 1 : i + 1]).iloc[-1]
        _compare(report, candles["ts"].iloc[i], limited, full.iloc[i], tolerance)
    return report
