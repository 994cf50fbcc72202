"""`make demo`: build the lake from the sample data committed in the repo, then summarise it."""

from __future__ import annotations

import time

import dagster as dg
import pandas as pd
import typer

from helios_dagster.resources import market_data_from
from helios_dagster.runs import CheckOutcome, run_market_data
from helios_live.data.coverage import coverage_table, lake_coverage
from helios_live.data.sources import FileSource
from helios_live.settings import HeliosSettings


def run_demo(settings: HeliosSettings, instance: dg.DagsterInstance) -> None:
    started = time.perf_counter()
    source = FileSource(directory=settings.file_dir)
    resource = market_data_from(settings, kind="file", file_dir=str(settings.file_dir))
    pairs = [p for p in source.pairs if p in settings.pairs]
    typer.echo(f"Helios demo: sample data in {settings.file_dir}, lake in {settings.lake_root}")
    checks: dict[str, list[CheckOutcome]] = {}
    for i, pair in enumerate(pairs, start=1):
        first, end = source.coverage(pair)
        last_day = (end - pd.Timedelta(1, "ns")).date()
        typer.echo(f"[{i}/{len(pairs)}] {pair}: materialising {first.date()} .. {last_day} ...")
        summary = run_market_data(settings, pair, first.date(), last_day, resource, instance, verbose=False)
        checks[pair] = summary.checks
    _print_lake(settings)
    _print_checks(checks)
    elapsed = time.perf_counter() - started
    outcomes = [c for per_pair in checks.values() for c in per_pair]
    passed = sum(c.passed for c in outcomes)
    warned = sum(not c.passed and c.severity == "WARN" for c in outcomes)
    typer.echo(
        f"\nDemo finished in {elapsed:.1f} s: {len(pairs)} pairs, {passed}/{len(outcomes)} checks passed"
        f" ({warned} warnings). Browse it: `make ui` then http://127.0.0.1:3000"
    )


def _print_lake(settings: HeliosSettings) -> None:
    typer.echo("\nLake (candles):")
    for line in coverage_table(lake_coverage(settings.lake_root)):
        typer.echo(f"  {line}")


def _print_checks(checks: dict[str, list[CheckOutcome]]) -> None:
    typer.echo("\nChecks:")
    for pair, outcomes in checks.items():
        parts = []
        for c in outcomes:
            state = "ok" if c.passed else ("WARN" if c.severity == "WARN" else "FAILED")
            detail = ""
            if c.name == "candles_gaps":
                detail = f" missing={c.metadata.get('missing_by_series') or {}}"
            elif c.name == "candles_match_trades":
                detail = f" compared={c.metadata.get('candles_compared')} mismatched={c.metadata.get('mismatched')}"
            parts.append(f"{c.name}={state}{detail}")
        typer.echo(f"  {pair:<8} " + "; ".join(parts))
