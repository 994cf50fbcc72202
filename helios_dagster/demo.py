"""`make demo`: build the lake from the sample data committed in the repo, then summarise it."""

from __future__ import annotations

import time
from collections import Counter

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
    typer.echo("\nLake (candles):")
    for line in coverage_table(lake_coverage(settings.lake_root)):
        typer.echo(f"  {line}")
    typer.echo("\nChecks:")
    states: Counter[str] = Counter()
    for pair, outcomes in checks.items():
        parts = []
        for check in outcomes:
            state = _state(check)
            states[state] += 1
            parts.append(f"{check.name}={state}{_detail(check)}")
        typer.echo(f"  {pair:<8} " + "; ".join(parts))
    elapsed = time.perf_counter() - started
    typer.echo(
        f"\nDemo finished in {elapsed:.1f} s: {len(pairs)} pairs; checks: {states['ok']} passed, "
        f"{states['WARN']} warned, {states['FAILED']} failed, {states['n/a']} not applicable."
        " Browse it: `make ui`, then http://127.0.0.1:3000"
    )


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
