"""Run the market-data job in-process (the CLI and the demo), recorded in the Dagster instance."""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from helios_core.errors import HeliosError, SourceError
from helios_dagster.defs.market_data.definitions import JOB
from helios_dagster.defs.model.layout import Layout, Runs
from helios_dagster.partitions import day_bounds, range_tags
from helios_dagster.resources import MarketDataResource
from helios_dagster.schedules import TRAIN_JOB
from helios_live.settings import HeliosSettings

if TYPE_CHECKING:
    import pandas as pd

_INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class RunFailed(HeliosError):
    """A Dagster run of Helios assets failed; the message carries the step's error."""


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    severity: str
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    checks: list[CheckOutcome]
    materialized: dict[str, dict[str, object]] = field(default_factory=dict)  # asset -> its metadata


def quiet_dagster_warnings() -> None:
    """Dagster flags beta/preview APIs (partitioned checks, single-run backfills) on every
    definition; docs/market-data.md says it once. Matched by message, so no dagster import."""
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")


def run_market_data(
    settings: HeliosSettings,
    pair: str,
    first: date,
    last: date,
    market_data: MarketDataResource,
    instance: dg.DagsterInstance,
    verbose: bool = True,
    job_name: str = JOB,
    check_files: bool = False,
) -> RunSummary:
    """Materialise raw_candles + candles (+ checks) for `pair` x `[first, last]` in one run;
    with `job_name=PIPELINE`, features, labels and the training dataset too. `check_files`
    reads a file source first (`check_file_days`), as the command line does."""
    if pair not in settings.pairs:
        raise HeliosError(f"unknown pair {pair}: not in HELIOS_PAIRS ({', '.join(settings.pairs)})")
    if last < first:
        raise HeliosError(f"end {last} is before start {first}")
    if first < settings.history_start:
        # Dagster would answer with a traceback: the day has no partition.
        raise HeliosError(f"start {first} is before HELIOS_HISTORY_START ({settings.history_start})")
    if check_files and market_data.kind == "file":
        check_file_days(market_data, pair, first, last)
    resources = {"market_data": market_data}
    return _execute(
        settings, job_name, range_tags(pair, first, last), instance, verbose, f"{pair} {first}..{last}", resources
    )


def check_file_days(market_data: MarketDataResource, pair: str, first: date, last: date) -> None:
    """Read a file source before its run: a bad file or a day without candles then stops in
    one line naming the file, not in a step failure (a logged traceback) after the earlier
    days were written."""
    batch = market_data.open().fetch_candles(pair, day_bounds(first)[0], day_bounds(last)[1])
    present = set(batch.candles["ts"].dt.date)
    for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
        if day not in present:
            note = _around(batch.candles["ts"], day_bounds(day)[0])
            raise SourceError(f"{batch.origin}: no {pair} candles on {day} ({note}); nothing written")


def _around(ts: pd.Series, start: datetime) -> str:
    before, after = ts[ts < start], ts[ts >= start]
    if len(before) and len(after):
        return f"the candles jump from ts {before.iloc[-1]} to ts {after.iloc[0]}"
    if len(before):
        return f"the last candle opens at ts {before.iloc[-1]}"
    return f"the first candle opens at ts {after.iloc[0]}" if len(after) else "not one candle in the whole range"


def run_training(
    settings: HeliosSettings,
    instance: dg.DagsterInstance,
    verbose: bool = True,
    layout: Layout | None = None,
    runs: Runs | None = None,
) -> RunSummary:
    """Train, export, check and register a candidate, run the walk-forward folds (`layout`) and
    the candidate's backtest, then apply the promotion gate (job `train`)."""
    layout, runs = layout or Layout(), runs or Runs()
    config = {
        "ops": {
            "walk_forward": {"config": asdict(layout) | asdict(runs)},
            "candidate_backtest": {"config": asdict(runs)},
        }
    }
    return _execute(settings, TRAIN_JOB, {}, instance, verbose, "training", {}, config)


def run_analytics(
    settings: HeliosSettings,
    instance: dg.DagsterInstance,
    verbose: bool = True,
    ledgers: Mapping[str, str] | None = None,
) -> RunSummary:
    """Export the ledgers (`ledgers`: name -> URL, else every one found) and build the dbt
    project over them and the lake (job `analytics_job`)."""
    from helios_dagster.defs.analytics import JOB as ANALYTICS_JOB

    config = {"ops": {"ledger_export": {"config": {"ledgers": dict(ledgers or {})}}}}
    # dagster-dbt echoes every dbt log line to stdout; quiet runs keep them out of the demo's
    # output (a failure's message still names the failing tests and rows).
    with contextlib.redirect_stdout(sys.stdout if verbose else io.StringIO()):
        return _execute(settings, ANALYTICS_JOB, {}, instance, verbose, "analytics", {}, config)


def _execute(
    settings: HeliosSettings,
    job_name: str,
    tags: dict[str, str],
    instance: dg.DagsterInstance,
    verbose: bool,
    what: str,
    resources: Mapping[str, object],
    config: Mapping[str, object] | None = None,
) -> RunSummary:
    quiet_dagster_warnings()
    from helios_dagster.definitions import build_defs  # builds every asset: only when a run is asked for

    job = build_defs(settings, **resources).resolve_job_def(job_name)
    logs = _INFO_LOGS if verbose else {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    run_config = {**logs, **(config or {})}
    result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config, raise_on_error=False)
    if not result.success:
        raise RunFailed(f"run {result.run_id} ({what}) failed: {_failure(result)}")
    checks = [
        CheckOutcome(e.check_name, e.passed, e.severity.value, {k: _plain(v) for k, v in e.metadata.items()})
        for e in result.get_asset_check_evaluations()
    ]
    materialized = {
        e.asset_key.to_user_string(): {k: _plain(v) for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }
    return RunSummary(result.run_id, checks, materialized)


def _plain(value: object) -> object:
    return getattr(value, "value", value)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
                error = error.cause
            messages.append(f"{event.step_key}: {error.message.strip()}")
    return "; ".join(messages) or "see the run's logs in the Dagster UI"
