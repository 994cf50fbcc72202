"""Checks on features (GX bounds, look-ahead, recursive warm-up) and on labels / dataset."""

from datetime import timedelta
from functools import partial
from typing import Any

import dagster as dg

from helios_core.features.batch import block_features
from helios_core.features.leakage import (
    RECURSIVE_TOLERANCE,
    LeakageReport,
    lookahead_check,
    recursive_check,
    sample_positions,
)
from helios_core.features.spec import max_warmup
from helios_core.timeframes import Timeframe
from helios_dagster.daily import day_runs, sorted_partitions
from helios_dagster.defs.features.assets import DATASET, FEATURES, LABELS, read_days
from helios_dagster.defs.features.compute import available_timeframes, in_days, load, lookback_days
from helios_dagster.quality import Failure, feature_suite, label_suite, validate
from helios_dagster.resources import LakeResource
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings

SAMPLES = 20
FUTURE = 60
_LISTED = 100


def _failures(found: list[tuple[str, Failure]]) -> list[dict[str, object]]:
    return [{"pair": pair, **f.__dict__, "examples": [str(x) for x in f.examples]} for pair, f in found][:_LISTED]


def leakage(
    store: Lake, settings: HeliosSettings, context: dg.AssetCheckExecutionContext, kind: str
) -> dg.AssetCheckResult:
    """Run one leakage check on every pair and timeframe of the run, on the real candles."""
    history = max_warmup()
    reports: dict[str, LeakageReport] = {}
    for pair, first, last in day_runs(sorted_partitions(context)):
        for tf_text in available_timeframes(store, pair, first, last):
            tf = Timeframe.parse(tf_text)
            candles = load(store, pair, tf_text, first - timedelta(days=lookback_days(tf)), last + timedelta(days=1))
            compute = partial(block_features, timeframe=tf)
            in_run = in_days(candles["ts"], first, last)
            candidates = [i for i in sample_positions(len(candles), history, FUTURE, 10 * SAMPLES) if in_run[i]]
            positions = candidates[:: max(1, len(candidates) // SAMPLES)][:SAMPLES]
            if kind == "lookahead":
                report = lookahead_check(candles, compute, positions, history, FUTURE)
            else:
                report = recursive_check(candles, compute, positions, history)
            reports[f"{pair} {tf_text}"] = report
    samples = sum(r.samples for r in reports.values())
    failed = {name: sorted({f for f, _ in r.failures}) for name, r in reports.items() if r.failures}
    worst = {name: {k: v for k, v in r.worst.items() if v > 0} for name, r in reports.items()}
    if not samples:
        # Nothing could be checked (the lake holds too little history around this run):
        # say so as a warning rather than block on it or pass it silently.
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"samples": 0},
            description=f"not checked: no time in this run has {history} candles of history and {FUTURE} after it",
        )
    return dg.AssetCheckResult(
        passed=not failed, metadata={"samples": samples, "failing_features": failed, "worst_difference": worst}
    )


def build_checks(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=FEATURES,
        partitions_def=partitions,
        blocking=True,
        description="Great Expectations: every valid feature within its documented bounds (docs/features.md), "
        "ts unique and increasing.",
    )
    def features_expectations(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        return _suite_check(lake.lake(), context, FEATURES, feature_suite())

    @dg.asset_check(
        asset=FEATURES,
        partitions_def=partitions,
        blocking=True,
        description=f"Look-ahead: at {SAMPLES} sampled times per pair and timeframe, adding {FUTURE} future "
        "candles must not change any feature.",
    )
    def features_lookahead(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        return leakage(lake.lake(), settings, context, "lookahead")

    @dg.asset_check(
        asset=FEATURES,
        partitions_def=partitions,
        blocking=True,
        description="Recursive: features from only the declared warm-up of history must equal full-history "
        f"features within {RECURSIVE_TOLERANCE:g}.",
    )
    def features_recursive(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        return leakage(lake.lake(), settings, context, "recursive")

    @dg.asset_check(
        asset=LABELS,
        partitions_def=partitions,
        blocking=True,
        description="Great Expectations: label codes in {0, 1, 2} or null, label_end after t, ts unique and "
        "increasing.",
    )
    def labels_expectations(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        return _suite_check(lake.lake(), context, LABELS, label_suite())

    @dg.asset_check(
        asset=DATASET,
        partitions_def=partitions,
        blocking=True,
        description="The dataset keeps the label rules and is time-ordered per pair.",
    )
    def dataset_expectations(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        return _suite_check(lake.lake(), context, DATASET, label_suite())

    return [features_expectations, features_lookahead, features_recursive, labels_expectations, dataset_expectations]


def _suite_check(store: Lake, context: dg.AssetCheckExecutionContext, dataset: str, suite: Any) -> dg.AssetCheckResult:
    """Run a GX suite over the run's rows of `dataset`, one validation per pair and day range."""
    found, rows = [], 0
    for pair, first, last in day_runs(sorted_partitions(context)):
        _, frame = read_days(store, dataset, pair, first, last)
        rows += len(frame)
        found += [(pair, f) for f in validate(frame, suite)]
    return dg.AssetCheckResult(passed=rows > 0 and not found, metadata={"rows": rows, "failures": _failures(found)})
