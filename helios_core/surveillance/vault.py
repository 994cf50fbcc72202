"""Vault health (Hyperliquid's HLP): 3-sigma rules on the vault's equity and P&L series.

Each snapshot's change (equity in percent of the previous equity, P&L in USD) is compared with
the changes of the previous `window` snapshots (never including itself): z = (change - mean) / std.
The HLP score is 70/3 points per sigma of the larger |z|, capped at 100: 3 sigma scores 70
(CRITICAL, the documents' "potential exploitation"), about 2.1 sigma 50 (HIGH, "anomalous").
A series too short (`min_samples`) or flat (std 0) scores 0: there is no basis for a z-score.

`VaultHealth` is the streaming detector; `vault_batch` its twin; they agree.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from helios_core.surveillance.events import Finding, Severity
from helios_core.surveillance.observations import VaultState, usable

POINTS_PER_SIGMA = 70.0 / 3.0


@dataclass(frozen=True, slots=True)
class VaultConfig:
    window: int = 48
    min_samples: int = 10
    critical: float = 70.0
    high: float = 50.0


@dataclass(frozen=True, slots=True)
class VaultReading:
    vault: str
    ts: float
    equity: float
    pnl: float
    equity_change_pct: float
    pnl_change: float
    z_equity: float
    z_pnl: float
    score: float
    severity: Severity | None


def _z(value: float, history: deque[float] | np.ndarray) -> float:
    n = len(history)
    if n < 2 or not math.isfinite(value):
        return math.nan
    values = np.asarray(history, dtype=float)
    std = float(values.std(ddof=1))
    if not std > 0.0:
        return math.nan
    return (value - float(values.mean())) / std


def score_of(z_equity: float, z_pnl: float) -> float:
    worst = max((abs(z) for z in (z_equity, z_pnl) if math.isfinite(z)), default=0.0)
    return min(100.0, POINTS_PER_SIGMA * worst)


def severity_of(score: float, config: VaultConfig) -> Severity | None:
    if score >= config.critical:
        return Severity.CRITICAL
    if score >= config.high:
        return Severity.HIGH
    return None


class VaultHealth:
    def __init__(self, config: VaultConfig | None = None) -> None:
        self.config = config or VaultConfig()
        self.last: dict[str, VaultState] = {}
        self.equity_changes: dict[str, deque[float]] = {}
        self.pnl_changes: dict[str, deque[float]] = {}
        self.bad = 0

    def update(self, state: VaultState) -> VaultReading | None:
        """The reading for a new snapshot; None for an unusable one or the first of a vault."""
        if not (usable(state.equity) and math.isfinite(state.pnl) and math.isfinite(state.ts)):
            self.bad += 1
            return None
        previous = self.last.get(state.vault)
        if previous is not None and state.ts <= previous.ts:
            return None  # the same snapshot polled again
        self.last[state.vault] = state
        if previous is None:
            return None
        de = (state.equity - previous.equity) / previous.equity * 100.0
        dp = state.pnl - previous.pnl
        eq = self.equity_changes.setdefault(state.vault, deque(maxlen=self.config.window))
        pn = self.pnl_changes.setdefault(state.vault, deque(maxlen=self.config.window))
        enough = len(eq) >= self.config.min_samples
        z_e = _z(de, eq) if enough else math.nan
        z_p = _z(dp, pn) if enough else math.nan
        eq.append(de)
        pn.append(dp)
        score = score_of(z_e, z_p)
        return VaultReading(
            state.vault, state.ts, state.equity, state.pnl, de, dp, z_e, z_p, score, severity_of(score, self.config)
        )


def finding(reading: VaultReading, venue: str, config: VaultConfig) -> Finding | None:
    if reading.severity is None:
        return None
    return Finding(
        "vault_anomaly",
        venue,
        reading.vault,
        reading.severity,
        reading.score,
        {
            "equity": reading.equity,
            "pnl": reading.pnl,
            "equity_change_pct": reading.equity_change_pct,
            "pnl_change": reading.pnl_change,
            "z_equity": reading.z_equity,
            "z_pnl": reading.z_pnl,
        },
    )


def vault_batch(equity: np.ndarray, pnl: np.ndarray, config: VaultConfig | None = None) -> np.ndarray:
    """Scores of one vault's snapshots in time order (usable, de-duplicated); the first has none (NaN)."""
    config = config or VaultConfig()
    equity = np.asarray(equity, dtype=float)
    pnl = np.asarray(pnl, dtype=float)
    scores = np.full(len(equity), np.nan)
    de = np.diff(equity) / equity[:-1] * 100.0
    dp = np.diff(pnl)
    for i in range(len(de)):
        lo = max(0, i - config.window)
        if i - lo >= config.min_samples:
            scores[i + 1] = score_of(_z(float(de[i]), de[lo:i]), _z(float(dp[i]), dp[lo:i]))
        else:
            scores[i + 1] = 0.0
    return scores
