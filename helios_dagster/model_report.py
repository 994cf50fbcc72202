"""What `helios model list` and `helios model train` print: a line per version with its role,
the gate's decision and its key numbers, and a trained candidate's report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helios_dagster.defs.model.definitions import latest_candidate
from helios_dagster.defs.model.evidence import read_walk_forward
from helios_dagster.defs.model.gate import read_decision
from helios_dagster.defs.model.training import CANDIDATE
from helios_dagster.runs import RunSummary
from helios_dagster.summaries import backtest_lines, classification_lines, decision_lines, figure, walk_forward_lines
from helios_live.models.registry import WALK_FORWARD, Registry
from helios_live.settings import HeliosSettings

HEADER = (
    f"{'':2}{'version':<27}{'role':<13}{'checks':<7}{'bal.acc':>8}{'macro-F1':>9}{'ECE':>6}"
    f"  {'gate':<9}{'WF Sharpe':>10}{'WF random':>10}{'test Sharpe':>12}  pairs"
)


def model_rows(root: Path, *, walk_forward: bool = False, reasons: bool = False) -> list[str]:
    """One line per version (walk-forward fold models only with `walk_forward`), oldest first."""
    registry = Registry(root)
    versions, active = registry.versions(), registry.active()
    if not versions:
        return []
    rows = [HEADER]
    for version in versions:
        bundle = registry.get(version)
        meta, role = bundle.meta, bundle.meta.get("role", CANDIDATE)
        if role == WALK_FORWARD and not walk_forward:
            continue
        decision = read_decision(bundle.path)
        rows.append(_row(version, meta, role, decision, version == active))
        if reasons and decision is not None:
            rows += [f"{'':4}- {reason}" for reason in decision["reasons"]]
            rows += [f"{'':4}note: {note}" for note in decision["notes"]]
    return rows


def _row(version: str, meta: dict[str, Any], role: str, decision: dict[str, Any] | None, active: bool) -> str:
    test = meta.get("metrics", {}).get("test", {}).get("model", {})
    checks = "ok" if all(meta.get("checks", {}).values()) else "FAILED"
    scores = "".join(
        f"{test.get(k, float('nan')):>{w}.3f}" for k, w in (("balanced_accuracy", 8), ("macro_f1", 9), ("ece", 6))
    )
    wf_sharpe, wf_random, test_sharpe, verdict = "-", "-", "-", "-"
    if role == WALK_FORWARD:
        verdict = f"fold {meta.get('walk_forward', {}).get('fold', '?')}"
    if decision is not None:
        verdict = "passed" if decision["promote"] else "refused"
        figures = decision["figures"]
        walk = figures.get("walk_forward") or {}
        aggregate = walk.get("aggregate")
        if aggregate:
            wf_sharpe = figure("sharpe", aggregate["mean_sharpe"])
            wf_random = f"{aggregate['beating_random']}/{aggregate['folds']}"
        period = figures.get("test_period") or {}
        if period.get("candidate"):
            test_sharpe = figure("sharpe", period["candidate"]["sharpe"])
    marker = "* " if active else "  "
    return (
        f"{marker}{version:<27}{role:<13}{checks:<7}{scores}  {verdict:<9}{wf_sharpe:>10}{wf_random:>10}"
        f"{test_sharpe:>12}  {','.join(meta.get('pairs', []))}"
    )


def training_lines(settings: HeliosSettings, summary: RunSummary) -> Iterator[str]:
    """The candidate of a `train` run: its test metrics beside the baselines, the walk-forward
    folds, its backtest on its test period and the gate's decision with its reasons."""
    registry = Registry(settings.models_root)
    version = latest_candidate(registry)
    bundle = registry.get(version)
    meta = bundle.meta
    test = meta["periods"]["test"]
    yield f"candidate {version} ({meta['preset']}, {meta['parameters']:,} parameters, {','.join(meta['pairs'])})"
    yield f"held-out test period {test[0]} .. {test[1]} ({meta['split']['test']:,} samples):"
    yield from (f"  {line}" for line in classification_lines(meta))
    walk = summary.materialized.get("walk_forward", {}).get("evidence")
    if walk:
        yield "walk-forward folds (each trained as the candidate, backtested on the days after its window):"
        yield from (f"  {line}" for line in walk_forward_lines(read_walk_forward(Path(str(walk)))))
    tested = summary.materialized.get("candidate_backtest", {}).get("evidence")
    if tested:
        data = json.loads(Path(str(tested)).read_text())
        yield f"backtest on the test period: report {data['candidate']['report']}"
        report = json.loads(Path(data["candidate"]["report"]).with_suffix(".json").read_text())
        yield from (f"  {line}" for line in backtest_lines(report))
    decision = read_decision(bundle.path)
    if decision is not None:
        yield from decision_lines(decision, registry.active())
