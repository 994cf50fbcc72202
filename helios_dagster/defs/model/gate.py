"""The promotion gate: a candidate becomes ACTIVE only on evidence.

All of: it is a candidate (never a walk-forward fold's model); its parity and leakage checks
passed; on its test period its balanced accuracy and ECE meet their thresholds and it beats the
best baseline classifier on balanced accuracy and on macro-F1; its walk-forward folds meet the
Sharpe and drawdown thresholds and most of them beat random entry; and on its test period it
is not worse than ACTIVE (Sharpe), where the two can be compared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from helios_dagster.defs.model.evidence import CandidateBacktest, WalkForward
from helios_dagster.defs.model.training import CANDIDATE, training_identity
from helios_live.models.registry import REQUIRED_CHECKS, WALK_FORWARD, Bundle
from helios_live.settings import HeliosSettings

CLASSIFICATION = ("balanced_accuracy", "macro_f1")
GATE_FILE = "gate.json"


@dataclass(frozen=True)
class Thresholds:
    min_balanced_accuracy: float
    max_ece: float
    min_sharpe: float  # the walk-forward folds' mean Sharpe
    max_drawdown: float  # the worst fold's max drawdown, a fraction of equity

    @classmethod
    def of(cls, settings: HeliosSettings) -> Thresholds:
        gate = settings.gate
        return cls(gate.min_balanced_accuracy, gate.max_ece, gate.min_sharpe, gate.max_drawdown)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one version, with every number behind it (`figures`, JSON)."""

    version: str
    promote: bool
    reasons: tuple[str, ...]  # why not; empty when promoted
    notes: tuple[str, ...]  # comparisons that could not be made, and why
    figures: dict[str, Any]

    def summary(self) -> str:
        """One line for the registry's history."""
        if not self.promote:
            return "; ".join(self.reasons)
        return "passed the gate" + "".join(f"; {note}" for note in self.notes)

    def write(self, folder: Path) -> Path:
        """Write the decision as gate.json in `folder` (beside the bundle); the latest wins,
        the registry's history keeps every one."""
        path = folder / GATE_FILE
        path.write_text(json.dumps(asdict(self), indent=1, allow_nan=False, default=str) + "\n")
        return path


def read_decision(folder: Path) -> dict[str, Any] | None:
    """The gate.json in `folder`, if the gate has judged that bundle."""
    path = folder / GATE_FILE
    return dict(json.loads(path.read_text())) if path.is_file() else None


def gate(
    bundle: Bundle,
    settings: HeliosSettings,
    walk_forward: WalkForward | None,
    backtest: CandidateBacktest | None,
) -> GateDecision:
    """Judge `bundle` on its checks, its classification metrics and the backtests' evidence."""
    limits = Thresholds.of(settings)
    meta = bundle.meta
    reasons: list[str] = []
    notes: list[str] = []
    role = meta.get("role", CANDIDATE)
    if role == WALK_FORWARD:
        reasons.append("a walk-forward fold's model is evidence, never promoted")
    checks = meta.get("checks", {})
    reasons += [f"{name} check failed" for name in REQUIRED_CHECKS if not checks.get(name)]
    classification = _classification(meta, limits, reasons)
    walk = _walk_forward(meta, walk_forward, limits, reasons)
    period = _against_active(bundle.version, backtest, reasons, notes)
    figures = {
        "role": role,
        "thresholds": asdict(limits),
        "classification": classification,
        "walk_forward": walk,
        "test_period": period,
    }
    return GateDecision(bundle.version, not reasons, tuple(reasons), tuple(notes), figures)


def _classification(meta: dict[str, Any], limits: Thresholds, reasons: list[str]) -> dict[str, Any]:
    test = meta.get("metrics", {}).get("test", {})
    model, baselines = test.get("model", {}), test.get("baselines", {})
    accuracy, ece = float(model.get("balanced_accuracy", 0.0)), float(model.get("ece", 1.0))
    if accuracy < limits.min_balanced_accuracy:
        reasons.append(f"balanced accuracy {accuracy:.3f} < {limits.min_balanced_accuracy}")
    if ece > limits.max_ece:
        reasons.append(f"ECE {ece:.3f} > {limits.max_ece}")
    best: dict[str, Any] = {}
    if not baselines:
        reasons.append("no baseline classifiers on the test period to compare with")
    for key in CLASSIFICATION if baselines else ():
        name = max(baselines, key=lambda b: float(baselines[b].get(key, 0.0)))
        value, ours = float(baselines[name].get(key, 0.0)), float(model.get(key, 0.0))
        best[key] = {"baseline": name, "value": value, "model": ours}
        if not ours > value:
            reasons.append(f"{key.replace('_', ' ')} {ours:.3f} does not beat the {name} baseline's {value:.3f}")
    return {"model": {k: model.get(k) for k in (*CLASSIFICATION, "ece")}, "best_baseline": best}


def _walk_forward(
    meta: dict[str, Any], evidence: WalkForward | None, limits: Thresholds, reasons: list[str]
) -> dict[str, Any] | None:
    if evidence is None or not evidence.folds:
        reasons.append("no walk-forward backtest")
        return None
    aggregate = evidence.aggregate()
    out = {"aggregate": asdict(aggregate), "folds": [asdict(f) for f in evidence.folds]}
    if evidence.identity != training_identity(meta):
        reasons.append("the walk-forward folds were trained with another set-up than the candidate")
    trained_until = meta.get("training_window", {}).get("last_day")
    if evidence.dataset_last_day != trained_until:
        reasons.append(f"the walk-forward ran on data until {evidence.dataset_last_day}, the candidate's until "
                       f"{trained_until}")  # fmt: skip
    if aggregate.mean_sharpe is None:
        undefined = [f.fold for f in evidence.folds if f.backtest.sharpe is None]
        reasons.append(f"walk-forward Sharpe undefined in fold(s) {undefined} (no trades or a flat curve)")
    elif aggregate.mean_sharpe < limits.min_sharpe:
        reasons.append(f"walk-forward mean Sharpe {aggregate.mean_sharpe:.2f} < {limits.min_sharpe}")
    if aggregate.max_drawdown is None or aggregate.max_drawdown > limits.max_drawdown:
        shown = "undefined" if aggregate.max_drawdown is None else f"{aggregate.max_drawdown:.1%}"
        reasons.append(f"walk-forward max drawdown {shown} > {limits.max_drawdown:.0%}")
    if not aggregate.beating_random > aggregate.folds / 2:
        reasons.append(f"{aggregate.beating_random} of {aggregate.folds} walk-forward folds beat random entry "
                       "(a majority must)")  # fmt: skip
    return out


def _against_active(
    version: str, evidence: CandidateBacktest | None, reasons: list[str], notes: list[str]
) -> dict[str, Any] | None:
    if evidence is None or evidence.candidate.version != version:
        reasons.append("no backtest of the candidate on its test period")
        return None
    ours, active = evidence.candidate, evidence.active
    out = {"candidate": asdict(ours), "active": asdict(active) if active else None, "skipped": evidence.skipped}
    if active is None:
        notes.append(f"not compared with ACTIVE: {evidence.skipped}")
        return out
    if evidence.skipped:
        notes.append(evidence.skipped)
    if active.sharpe is not None and (ours.sharpe is None or ours.sharpe < active.sharpe):
        shown = "undefined" if ours.sharpe is None else f"{ours.sharpe:.2f}"
        reasons.append(f"Sharpe {shown} on the test period is worse than ACTIVE {active.version}'s {active.sharpe:.2f}")
    return out
