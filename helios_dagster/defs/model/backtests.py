"""Backtests as evidence: the candidate on its held-out test period (beside ACTIVE), and the
walk-forward folds, each a model trained on a rolling window and backtested on the days after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from helios_core.timeframes import Timeframe
from helios_dagster.defs.model.evidence import CandidateBacktest, FoldBacktest, PeriodBacktest, WalkForward
from helios_dagster.defs.model.layout import Layout, Runs
from helios_dagster.defs.model.training import dataset_files, train_and_register, training_identity
from helios_dagster.ml.data import TrainingError
from helios_live.backtest.run import run_backtest
from helios_live.data.lake import Lake
from helios_live.models.registry import WALK_FORWARD, Bundle, Registry
from helios_live.settings import HeliosSettings

Log = Callable[[str], None]


@dataclass(frozen=True)
class Fold:
    number: int
    train: tuple[date, date]  # first and last day, inclusive
    test: tuple[date, date]


def backtest(
    settings: HeliosSettings,
    store: Lake,
    version: str,
    pairs: list[str],
    period: tuple[datetime, datetime],
    out_dir: Path,
    runs: Runs,
    log: Log,
) -> PeriodBacktest:
    """Backtest `version` on `pairs` over `period` into the new folder `out_dir`."""
    start, end = period
    log(f"backtesting {version} on {','.join(pairs)} over {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC")
    result = run_backtest(
        settings, model_version=version, pairs=pairs, start=start, end=end, out_dir=out_dir,
        lake=store, seed=runs.seed, random_runs=runs.random_runs, progress=log,
    )  # fmt: skip
    figures = PeriodBacktest.of(version, result)
    log(f"{version}: {figures.summary} Report: {figures.report}")
    return figures


def held_out_period(bundle: Bundle) -> tuple[datetime, datetime]:
    """The backtest period that decides exactly the bundle's held-out test samples: from the
    open of the candle whose close is the first test decision to the last test decision."""
    periods = bundle.meta.get("periods", {})
    if "test" not in periods:
        raise TrainingError(f"{bundle.version} records no test period (trained before bundles kept one)")
    first, last = (datetime.fromisoformat(t) for t in periods["test"])
    step = timedelta(seconds=Timeframe.parse(str(bundle.meta.get("base_timeframe", "1m"))).seconds)
    return first - step, last


def not_comparable(candidate: dict[str, Any], active: dict[str, Any]) -> str | None:
    """Why ACTIVE cannot be backtested beside the candidate (None when it can)."""
    name = active.get("version")
    bases = (str(active.get("base_timeframe", "1m")), str(candidate.get("base_timeframe", "1m")))
    if bases[0] != bases[1]:
        return f"ACTIVE {name} decides on {bases[0]} candles, the candidate on {bases[1]}: not compared"
    features = (active.get("feature_set_version"), candidate.get("feature_set_version"))
    if features[0] != features[1] or active.get("feature_names") != candidate.get("feature_names"):
        return f"ACTIVE {name} computes feature set {features[0]}, the candidate {features[1]}: not compared"
    return None


def backtest_candidate(
    settings: HeliosSettings, store: Lake, registry: Registry, version: str, out_root: Path, runs: Runs, log: Log
) -> CandidateBacktest:
    """The candidate on its held-out test period, and ACTIVE (if any, and comparable) on the same."""
    bundle = registry.get(version)
    period, pairs = held_out_period(bundle), list(bundle.meta["pairs"])
    candidate = backtest(settings, store, version, pairs, period, out_root / "candidate", runs, log)
    active_version = registry.active()
    if active_version is None:
        return CandidateBacktest(candidate, None, "no ACTIVE model to compare with")
    if active_version == version:
        return CandidateBacktest(candidate, None, "the candidate is ACTIVE already")
    active = registry.get(active_version)
    if same_network(bundle, active):
        note = f"ACTIVE {active_version} is the same network (identical ONNX and feature coverage)"
        return CandidateBacktest(candidate, replace(candidate, version=active_version), note)
    skipped = not_comparable(bundle.meta, active.meta)
    if skipped is not None:
        log(skipped)
        return CandidateBacktest(candidate, None, skipped)
    other = backtest(settings, store, active_version, pairs, period, out_root / f"active-{active_version}", runs, log)
    return CandidateBacktest(candidate, other, None)


def same_network(a: Bundle, b: Bundle) -> bool:
    keys = ("onnx_sha256", "feature_coverage", "base_timeframe")
    return all(a.meta.get(k) == b.meta.get(k) for k in keys)


def fold_layout(first: date, last: date, layout: Layout, max_train_days: int) -> list[Fold]:
    """Rolling folds over the dataset's days [first, last]: the last `folds * test_days` days are
    the folds' test periods, in order; each fold trains on the days just before its own."""
    if layout.folds < 1 or layout.test_days < 1 or layout.train_days < 0:
        raise TrainingError(f"walk-forward needs folds >= 1, test_days >= 1 and train_days >= 0, not {layout}")
    first_test = last - timedelta(days=layout.folds * layout.test_days - 1)
    room = (first_test - first).days
    days = layout.train_days or min(room, max_train_days)
    if days < 1 or days > room:
        raise TrainingError(
            f"the dataset holds {(last - first).days + 1} days ({first} .. {last}): {layout.folds} walk-forward"
            f" folds of {layout.test_days} test days leave {max(room, 0)} days before the first fold to train on,"
            f" not {days}"
        )
    out = []
    for k in range(layout.folds):
        test_first = first_test + timedelta(days=k * layout.test_days)
        train_last = test_first - timedelta(days=1)
        train = (train_last - timedelta(days=days - 1), train_last)
        out.append(Fold(k + 1, train, (test_first, test_first + timedelta(days=layout.test_days - 1))))
    return out


def walk_forward(
    settings: HeliosSettings,
    store: Lake,
    registry: Registry,
    layout: Layout,
    out_root: Path,
    runs: Runs,
    log: Log,
) -> WalkForward:
    """Train each fold's model as the candidate is trained (same config, its own window),
    register it as a walk-forward model (never promoted) and backtest it on its test days."""
    files, _ = dataset_files(store, settings)
    first, last = min(f.day for f in files), max(f.day for f in files)
    plan = fold_layout(first, last, layout, settings.train.days)
    results, identity = [], None
    for fold in plan:
        log(f"walk-forward fold {fold.number}/{len(plan)}: train {fold.train[0]} .. {fold.train[1]}, test "
            f"{fold.test[0]} .. {fold.test[1]}")  # fmt: skip
        test = [_midnight(fold.test[0]), _midnight(fold.test[1] + timedelta(days=1))]
        extra = {"walk_forward": {"fold": fold.number, "of": len(plan), "backtest": [t.isoformat() for t in test]}}
        bundle = train_and_register(settings, store, registry, log, window=fold.train, role=WALK_FORWARD, extra=extra)
        identity = training_identity(bundle.meta)
        pairs = list(bundle.meta["pairs"])
        figures = backtest(settings, store, bundle.version, pairs, (test[0], test[1]), out_root / f"fold-{fold.number}",
                           runs, log)  # fmt: skip
        results.append(FoldBacktest(fold.number, (fold.train[0].isoformat(), fold.train[1].isoformat()), figures))
    return WalkForward(tuple(results), identity or {}, last.isoformat())


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
