"""`helios`: the command line of the batch side (data, models, backtests, the demo).

Commands import dagster and pandas inside their bodies so that `helios --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from helios_core.errors import HeliosError
from helios_core.pairs import normalise_pair
from helios_live.cli import live_app
from helios_live.settings import HeliosSettings, load_settings

if TYPE_CHECKING:
    import dagster as dg

    from helios_dagster.runs import CheckOutcome

app = typer.Typer(
    help="Helios: ML-driven crypto trading platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Market data: import files, backfill from an exchange, show lake coverage.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
model_app = typer.Typer(
    help="Models: train a candidate through the gate, list bundles, promote one, roll back.", no_args_is_help=True
)
app.add_typer(model_app, name="model")
app.add_typer(live_app, name="live")


def _settings() -> HeliosSettings:
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str((settings.home / "dagster").resolve())))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():
        # Local default: SQLite storage in DAGSTER_HOME, and no usage statistics sent anywhere.
        instance_config.write_text("telemetry:\n  enabled: false\n")
    return settings


def _instance() -> dg.DagsterInstance:
    import dagster as dg

    return dg.DagsterInstance.get()


@data_app.command("import")
def data_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="Parquet or CSV file of candles (ts, open, high, low, close, volume) or trades (ts, price, quantity)."
        ),
    ],
    pair: Annotated[str, typer.Option("--pair", help="Pair the file holds, e.g. BTCZAR; must be in HELIOS_PAIRS.")],
) -> None:
    """Validate a file and write it into the lake as raw_candles + candles, one run per file."""
    import pandas as pd

    from helios_dagster.resources import market_data_from
    from helios_dagster.runs import run_market_data
    from helios_live.data.sources import FileSource

    settings = _settings()
    symbol = normalise_pair(pair)
    if not path.is_file():
        raise HeliosError(f"no such file: {path}")
    first, end = FileSource(files={symbol: [path]}).coverage(symbol)
    last_day = (end - pd.Timedelta(1, "ns")).date()  # `end` is exclusive
    if first.date() < settings.history_start:
        raise HeliosError(f"{path}: starts {first.date()}, before HELIOS_HISTORY_START ({settings.history_start})")
    resource = market_data_from(settings, kind="file", file_imports={symbol: str(path.resolve())})
    typer.echo(f"importing {path} as {symbol}: {first.date()} .. {last_day}")
    summary = run_market_data(settings, symbol, first.date(), last_day, resource, _instance(), check_files=True)
    _echo_checks(summary.checks)
    typer.echo(f"done: run {summary.run_id}")


@data_app.command("backfill")
def data_backfill(
    pair: Annotated[str, typer.Option("--pair", help="Pair, e.g. BTCZAR; must be in HELIOS_PAIRS.")],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC), inclusive.")],
    source: Annotated[str, typer.Option("--source", help="file or valr (default: HELIOS_SOURCE).")] = "",
) -> None:
    """Fetch `[start, end]` for a pair from a source into the lake, in one Dagster run."""
    from helios_dagster.resources import market_data_from
    from helios_dagster.runs import run_market_data

    settings = _settings()
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise HeliosError(f"--start/--end must be YYYY-MM-DD: {exc}") from exc
    if source not in ("", "file", "valr"):
        raise HeliosError(f"--source must be file or valr, not {source!r}")
    resource = market_data_from(settings, **({"kind": source} if source else {}))
    typer.echo(f"backfilling {normalise_pair(pair)} from {resource.kind}: {first} .. {last}")
    summary = run_market_data(settings, normalise_pair(pair), first, last, resource, _instance(), check_files=True)
    _echo_checks(summary.checks)
    typer.echo(f"done: run {summary.run_id}")


@data_app.command("status")
def data_status() -> None:
    """Coverage and gaps of the lake, per pair and timeframe."""
    from helios_live.data.coverage import coverage_table, lake_coverage

    settings = _settings()
    rows = lake_coverage(settings.lake_root)
    if not rows:
        typer.echo(f"the lake at {settings.lake_root} is empty; run `helios data import` or `make demo`")
        return
    typer.echo(f"lake: {settings.lake_root}")
    for line in coverage_table(rows):
        typer.echo(line)


@model_app.command("list")
def model_list(
    walk_forward: Annotated[
        bool,
        typer.Option("--walk-forward", help="Also list the walk-forward folds' models (never promoted)."),
    ] = False,
    reasons: Annotated[bool, typer.Option("--reasons", help="Print the gate's reasons under each version.")] = False,
) -> None:
    """Every registered candidate: role, checks, test metrics, the gate's decision and its key
    numbers (walk-forward mean Sharpe, test-period Sharpe); * marks ACTIVE."""
    from helios_dagster.model_report import model_rows

    settings = _settings()
    rows = model_rows(settings.models_root, walk_forward=walk_forward, reasons=reasons)
    if not rows:
        typer.echo(f"no model registered in {settings.models_root}; run `helios model train` (or `make demo`)")
        return
    for line in rows:
        typer.echo(line)


@model_app.command("promote")
def model_promote(version: Annotated[str, typer.Argument(help="A version from `helios model list`.")]) -> None:
    """Make VERSION the ACTIVE model by hand (refused for a walk-forward fold's model, or if its
    parity or leakage checks failed; the gate's other rules are the operator's call)."""
    from helios_live.models.registry import Registry

    registry = Registry(_settings().models_root)
    registry.promote(version, "promoted by hand (helios model promote)")
    typer.echo(f"{version} is ACTIVE")


@model_app.command("train")
def model_train(
    folds: Annotated[int, typer.Option("--folds", help="Walk-forward folds.")] = 2,
    test_days: Annotated[int, typer.Option("--test-days", help="Days each walk-forward fold is backtested on.")] = 3,
    train_days: Annotated[
        int, typer.Option("--train-days", help="Days each fold trains on (0: what there is before the first fold).")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random-entry baseline.")] = 0,
    runs: Annotated[int, typer.Option("--runs", help="Random-entry draws per backtest.")] = 50,
) -> None:
    """Train a candidate on the lake's training_dataset, run the walk-forward folds and the
    candidate's backtest, and apply the promotion gate (the `train` job, in one Dagster run)."""
    from helios_dagster.defs.model.layout import Layout, Runs
    from helios_dagster.model_report import training_lines
    from helios_dagster.runs import run_training

    settings = _settings()
    typer.echo(f"training on the training_dataset in {settings.lake_root}; the run's log follows on stderr")
    summary = run_training(settings, _instance(), True, Layout(folds, test_days, train_days), Runs(seed, runs))
    for line in training_lines(settings, summary):
        typer.echo(line)


@app.command("backtest")
def backtest(
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC), inclusive.")],
    model: Annotated[str, typer.Option("--model", help="A version from `helios model list` (default: ACTIVE).")] = "",
    pairs: Annotated[str, typer.Option("--pairs", help="P1,P2 (default: the model's training pairs).")] = "",
    out: Annotated[
        Path | None, typer.Option("--out", help="New folder for the report (default: $HELIOS_HOME/backtests/...).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random-entry baseline.")] = 0,
    runs: Annotated[int, typer.Option("--runs", help="Random-entry draws.")] = 50,
    compare_approval: Annotated[
        int,
        typer.Option(
            "--compare-approval",
            help="Also backtest without Tier 4 and with this many random-veto draws at the approver's veto rate.",
        ),
    ] = 0,
    allocation: Annotated[
        bool,
        typer.Option(
            "--allocation",
            help="Run Tier 5 allocation (Black-Litterman targets each day, entry cap, rebalancing) and compare"
            " with the same backtest without it.",
        ),
    ] = False,
) -> None:
    """Backtest a model through the kernel over [start, end] on the lake's candles: a ledger,
    report.html and report.json, the metrics beside buy-and-hold and random entry."""
    from helios_dagster.backtest_command import BacktestRequest, run

    request = BacktestRequest(start, end, model, pairs, out, seed, runs, compare_approval, allocation)
    for line in run(_settings(), request, typer.echo):
        typer.echo(line)


@model_app.command("rollback")
def model_rollback() -> None:
    """Point ACTIVE back at the model that was ACTIVE before the latest promotion."""
    from helios_live.models.registry import Registry

    version = Registry(_settings().models_root).rollback()
    typer.echo(f"rolled back: {version} is ACTIVE")


@app.command("surveil")
def surveil(
    once: Annotated[bool, typer.Option("--once", help="Run each check once and exit.")] = False,
) -> None:
    """Run the surveillance monitors on their own (oracle, liquidations, vault), writing to the
    ledger; the live service follows their events with HELIOS_SURVEILLANCE_RUN=ledger."""
    import asyncio

    from helios_live.surveillance.run import surveil as run_monitors

    asyncio.run(run_monitors(_settings(), typer.echo, once))


@app.command("analytics")
def analytics(
    ledger: Annotated[str, typer.Option(help="The ledger to report on: live, demo or backtest.<run>.")] = "live",
) -> None:
    """Export every ledger to the lake and build the dbt marts over it (job analytics_job), then
    print the report."""
    from helios_dagster.runs import run_analytics

    settings = _settings()
    run_analytics(settings, _instance(), verbose=False)
    _echo_report(settings, ledger)


@app.command("report")
def report(
    ledger: Annotated[str, typer.Option(help="The ledger to report on: live, demo or backtest.<run>.")] = "live",
) -> None:
    """Print the last analytics build: performance, daily P&L, decision funnel, go-live criteria."""
    _echo_report(_settings(), ledger)


def _echo_report(settings: HeliosSettings, ledger: str) -> None:
    from helios_dagster.analytics.report import report_lines
    from helios_live.data.analytics import read_analytics

    for line in report_lines(read_analytics(settings.home.resolve()), ledger):
        typer.echo(line)


@app.command("demo")
def demo() -> None:
    """Build the lake from the sample data in the repo and print what came out."""
    from helios_dagster.demo import run_demo

    run_demo(_settings(), _instance())


def _echo_checks(checks: list[CheckOutcome]) -> None:
    for check in checks:
        state = "passed" if check.passed else ("WARN" if check.severity == "WARN" else "FAILED")
        typer.echo(f"  check {check.name}: {state}")


def main() -> None:
    """Entry point: known errors print one clear line and exit 1, no traceback."""
    from helios_dagster.runs import quiet_dagster_warnings

    quiet_dagster_warnings()
    try:
        app()
    except HeliosError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
