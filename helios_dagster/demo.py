"""`make demo`: the lake, features, labels, dataset, a trained model through the gate, the live
service on the simulator, and a backtest of the model over its held-out test period."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import typer

from helios_core.errors import HeliosError
from helios_core.features.spec import TIMEFRAMES, vector_names
from helios_dagster.analytics.ledger_export import backtest_name
from helios_dagster.analytics.report import go_live_lines, performance_lines, report_lines
from helios_dagster.defs.analytics.dbt import warehouse_path
from helios_dagster.defs.model.backtests import held_out_period
from helios_dagster.defs.model.definitions import latest_candidate
from helios_dagster.defs.model.evidence import read_candidate_backtest, read_walk_forward
from helios_dagster.defs.model.gate import read_decision
from helios_dagster.defs.model.layout import Layout, Runs
from helios_dagster.resources import market_data_from
from helios_dagster.runs import CheckOutcome, RunSummary, run_analytics, run_market_data, run_training
from helios_dagster.schedules import PIPELINE
from helios_dagster.summaries import (
    approval_lines,
    backtest_lines,
    classification_lines,
    decision_lines,
    echo_all,
    walk_forward_lines,
)
from helios_live.backtest.run import run_backtest
from helios_live.data.analytics import read_analytics
from helios_live.data.coverage import coverage_table, lake_coverage
from helios_live.data.lake import Lake
from helios_live.data.sources import FileSource
from helios_live.demo import DEMO_MIN_CONFIDENCE, live_demo
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings

# The sample's multi-asset window: ETH-BTC is the reference the other BTC-quoted alts are
# correlated with (corr_ref_30); BTC-PERP and XRP-ETH share no window with it.
SAMPLE_REFERENCE = "ETHBTC"
# Small enough to train in about a minute on two cores: the 1m month of BTC-PERP.
LIVE_HOURS = 2.0
DEMO_TRAINING = {"train_pairs": ("BTCPERP",), "train_max_epochs": 4, "train_folds": 2}
# Two walk-forward folds, each a model trained on 14 days (the candidate's config, a shorter
# window: the folds' training is most of the demo's time) and backtested on the next two.
DEMO_WALK_FORWARD = Layout(folds=2, test_days=2, train_days=14)
DEMO_RUNS = Runs(seed=0, random_runs=50)
APPROVAL_DRAWS = 3  # random-veto draws of the demo's Tier 4 comparison


def run_demo(settings: HeliosSettings, instance: dg.DagsterInstance) -> None:
    started = time.perf_counter()
    settings = settings.replace(reference_pair=SAMPLE_REFERENCE, **DEMO_TRAINING)
    source = FileSource(directory=settings.file_dir)
    resource = market_data_from(settings, kind="file", file_dir=str(settings.file_dir))
    pairs = sorted((p for p in source.pairs if p in settings.pairs), key=lambda p: p != SAMPLE_REFERENCE)
    typer.echo(f"Helios demo: sample data in {settings.file_dir}, lake in {settings.lake_root}")
    checks: dict[str, list[CheckOutcome]] = {}
    for i, pair in enumerate(pairs, start=1):
        first, end = source.coverage(pair)
        last_day = (end - pd.Timedelta(1, "ns")).date()
        typer.echo(f"[{i}/{len(pairs)}] {pair} {first.date()} .. {last_day}: candles, features, labels, dataset ...")
        summary = run_market_data(
            settings, pair, first.date(), last_day, resource, instance, verbose=False, job_name=PIPELINE
        )
        checks[pair] = summary.checks
    typer.echo("\nLake (candles):")
    for line in coverage_table(lake_coverage(settings.lake_root)):
        typer.echo(f"  {line}")
    _print_dataset(Lake(settings.lake_root), pairs, settings)
    typer.echo(
        f"\nTraining the {settings.model.preset} model on {', '.join(settings.train.pairs)}, its"
        f" {DEMO_WALK_FORWARD.folds} walk-forward folds and their backtests, then the gate ..."
    )
    # The backtests trade with the live part's confidence floor: the small model is rarely surer.
    backtested = settings.replace(live_min_confidence=DEMO_MIN_CONFIDENCE)
    training = run_training(backtested, instance, verbose=False, layout=DEMO_WALK_FORWARD, runs=DEMO_RUNS)
    checks["model"] = training.checks
    registry = Registry(settings.models_root)
    version = latest_candidate(registry)
    _print_model(registry, version, training)
    typer.echo(f"\nLive service on the simulator: {LIVE_HOURS:g} hours of the training pair, replayed ...")
    _print_live(asyncio.run(live_demo(settings, typer.echo, LIVE_HOURS)))
    states = _print_checks(checks)
    _print_backtest(training)
    _print_approval(backtested, registry, version)
    _print_analytics(settings, instance, training)
    elapsed = time.perf_counter() - started
    typer.echo(
        f"\nDemo finished in {elapsed:.1f} s: {len(pairs)} pairs; checks: {states['ok']} passed, "
        f"{states['WARN']} warned, {states['FAILED']} failed, {states['n/a']} not applicable."
        " Browse it: `make ui`, then http://127.0.0.1:3000"
    )


def _print_dataset(store: Lake, pairs: list[str], settings: HeliosSettings) -> None:
    up, down = f"{settings.label.up:.1%}", f"{settings.label.down:.1%}"
    label = f"{settings.label.candles} x {settings.label.timeframe}, +{up}/-{down}"
    typer.echo(f"\nTraining dataset: look-ahead labels ({label}) and feature coverage (share of valid values)")
    header = f"  {'pair':<8}{'base':>5}{'rows':>8}{'BUY':>7}{'SELL':>7}{'HOLD':>8}{'none':>6}"
    typer.echo(header + "".join(f"{tf:>7}" for tf in TIMEFRAMES))
    names = list(vector_names())
    for pair in pairs:
        files = [f for f in store.files("training_dataset") if f.pair == pair]
        if not files:
            continue
        frame = pd.concat([pd.read_parquet(f.path) for f in files], ignore_index=True)
        counts = frame["label"].value_counts()
        valid = frame[names].notna().mean()
        cover = "".join(f"{valid[[n for n in names if n.startswith(tf + '.')]].mean():>7.0%}" for tf in TIMEFRAMES)
        typer.echo(
            f"  {pair:<8}{files[0].timeframe:>5}{len(frame):>8}{counts.get(0, 0):>7}{counts.get(1, 0):>7}"
            f"{counts.get(2, 0):>8}{frame['label'].isna().sum():>6}{cover}"
        )


def _print_model(registry: Registry, version: str, training: RunSummary) -> None:
    bundle = registry.get(version)
    meta = bundle.meta
    test = meta["periods"]["test"]
    typer.echo(
        f"\nModel {version} ({meta['preset']}, {meta['parameters']:,} parameters), held-out test period"
        f" {test[0][:16]} .. {test[1][:16]} UTC, {meta['split']['test']:,} samples;"
        f" ONNX parity {meta['parity']['max_abs_difference']:.1e}:"
    )
    echo_all(typer.echo, classification_lines(meta))
    walk = training.materialized.get("walk_forward", {}).get("evidence")
    if walk:
        typer.echo("\nWalk-forward: each fold's model trained as this one, on the days before its backtest:")
        echo_all(typer.echo, walk_forward_lines(read_walk_forward(Path(str(walk)))))
    decision = read_decision(bundle.path)
    if decision is None:
        return
    typer.echo("")
    echo_all(typer.echo, decision_lines(decision, registry.active()), indent="")
    if not decision["promote"] and registry.active() is None:
        _promote_for_the_replay(registry, version)


def _promote_for_the_replay(registry: Registry, version: str) -> None:
    """The demo's live part needs an ACTIVE model; a refused one is promoted by hand, as an
    operator may with `helios model promote`, and the demo says so."""
    try:
        registry.promote(version, "promoted by hand by the demo, for its live replay, despite the gate")
    except HeliosError as exc:
        typer.echo(f"  (not promoted by hand either: {exc})")
        return
    typer.echo(
        f"  The demo promotes {version} by hand (as `helios model promote` would) only so that the live"
        " replay below has a model to serve. It has not earned it: do not trade on it."
    )


def _print_approval(settings: HeliosSettings, registry: Registry, version: str | None) -> None:
    """Tier 4 with the default approver (the rules: no key here), against no Tier 4 and random
    vetoes at its own rate, on the candidate's held-out period."""
    if version is None:
        return
    bundle = registry.get(version)
    start, end = held_out_period(bundle)
    out = settings.home / "backtests" / version / "approval-comparison"
    if out.exists():
        shutil.rmtree(out)  # the demo's own folder, from a run before this one
    typer.echo(
        f"\nTier 4 ({settings.approver}) on the same period: with it, without it, and"
        f" {APPROVAL_DRAWS} random-veto draws at its veto rate ..."
    )
    result = run_backtest(
        settings, model_version=version, pairs=list(bundle.meta.get("pairs", [])), start=start, end=end, out_dir=out,
        lake=Lake(settings.lake_root), seed=DEMO_RUNS.seed, random_runs=DEMO_RUNS.random_runs,
        compare_approval=APPROVAL_DRAWS,
    )  # fmt: skip
    echo_all(typer.echo, approval_lines(result.report["approval"]))
    typer.echo(f"  Report: {result.html}")


def _print_backtest(training: RunSummary) -> None:
    tested = training.materialized.get("candidate_backtest", {}).get("evidence")
    if not tested:
        return
    evidence = read_candidate_backtest(Path(str(tested)))
    ours = evidence.candidate
    report = json.loads(Path(ours.report).with_suffix(".json").read_text())
    typer.echo(
        f"\nBacktest of {ours.version} over its held-out test period ({ours.start[:16]} .. {ours.end[:16]} UTC),"
        f" through the kernel with next-open fills, fees and slippage, confidence floor {DEMO_MIN_CONFIDENCE}:"
    )
    echo_all(typer.echo, backtest_lines(report))
    if evidence.skipped:
        typer.echo(f"  ACTIVE not backtested beside it: {evidence.skipped}")
    elif evidence.active is not None:
        typer.echo(f"  ACTIVE {evidence.active.version} on the same period: Sharpe {_sharpe(evidence.active.sharpe)}")
    typer.echo(f"  Report: {ours.report}")


def _print_analytics(settings: HeliosSettings, instance: dg.DagsterInstance, training: RunSummary) -> None:
    """The dbt marts over the demo's ledgers: the replay's paper trading and the backtest."""
    typer.echo("\nAnalytics: the ledgers exported to the lake, the dbt marts built over them and the lake ...")
    run_analytics(settings, instance, verbose=False)
    analytics = read_analytics(settings.home.resolve())
    typer.echo("Paper trading (the live replay above):")
    echo_all(typer.echo, report_lines(analytics, "demo"), indent="")
    tested = training.materialized.get("candidate_backtest", {}).get("evidence")
    if tested:
        report = Path(read_candidate_backtest(Path(str(tested))).candidate.report)
        name = backtest_name(settings, report.with_name("ledger.sqlite"))
        typer.echo("The candidate's backtest:")
        echo_all(typer.echo, performance_lines(analytics, name), indent="")
        echo_all(typer.echo, go_live_lines(analytics, name), indent="")
    typer.echo(f"  Again at any time: `helios report --ledger demo`; the warehouse: {warehouse_path(settings)}")


def _sharpe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _print_live(metrics: dict[str, Any]) -> None:
    if not metrics:
        return
    rejected = sum(metrics["messages"]["rejected"].values())
    typer.echo(
        f"  {metrics['predictions']} predictions on {metrics['candles']} candles ({metrics['backfilled_candles']} of"
        f" them warm-up from the lake or REST); {metrics['stream']['messages']} messages, {rejected} rejected"
        " (the latency of live decisions, apart from catch-up ones, is above)"
    )
    steps = ", ".join(f"{k} {v}" for k, v in sorted(metrics["verdicts"].items()))
    typer.echo(f"  decision steps: {steps}")
    trading = metrics.get("trading")
    if not trading:
        return
    portfolio = trading["portfolio"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(trading["close_reasons"].items())) or "none"
    typer.echo(
        f"  paper trading: {portfolio['fills'].get('OPEN', 0)} positions opened, {trading['closed']} closed"
        f" ({reasons}), {trading['wins']} with a profit; realised P&L {trading['realised_pnl']:+.2f},"
        f" {portfolio['open_positions']} still open (unrealised {portfolio['unrealised']:+.2f})"
    )
    typer.echo(
        f"  equity {portfolio['equity']:.2f} of {portfolio['capital']:.2f} capital;"
        f" max drawdown {trading['max_drawdown']:.2%} (hard stop at {portfolio['limits']['max_drawdown']:.0%})"
    )
    typer.echo("  denied decisions by reason:")
    for reason, count in trading["denials"].items():
        typer.echo(f"    {count:>4}  {reason}")


def _print_checks(checks: dict[str, list[CheckOutcome]]) -> Counter[str]:
    typer.echo("\nChecks (ok / WARN / FAILED / n/a = nothing to compare):")
    states: Counter[str] = Counter()
    for pair, outcomes in checks.items():
        parts = []
        for check in outcomes:
            state = _state(check)
            states[state] += 1
            parts.append(f"{check.name}={state}{_detail(check)}")
        typer.echo(f"  {pair:<8} " + "; ".join(parts))
    return states


def _state(check: CheckOutcome) -> str:
    if check.name == "candles_match_reference" and not check.metadata.get("candles_compared"):
        return "n/a"  # no second record of this pair in the sample: nothing was compared
    if check.passed:
        return "ok"
    return "WARN" if check.severity == "WARN" else "FAILED"


def _detail(check: CheckOutcome) -> str:
    if check.name == "candles_gaps":
        return f" missing={check.metadata.get('missing_by_series') or {}}"
    if check.name == "candles_match_reference" and check.metadata.get("candles_compared"):
        return f" compared={check.metadata['candles_compared']} mismatched={check.metadata.get('mismatched')}"
    return ""
