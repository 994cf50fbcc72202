"""`allocation_targets`: the Tier 5 target weights, computed once a day (schedule
`allocation_daily`, 00:15 UTC) and again when a serious security event starts (sensor
`allocation_on_risk_event`), written to the ledger for the live service to read.

Unpartitioned on purpose: the targets in force are those of the newest data, and a backfill
would only add a row per past day that nothing reads. `as_of` in the run config recomputes a past moment by hand."""

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from helios_dagster.allocation import allocate
from helios_dagster.allocation.load import load_data
from helios_live.ledger import Ledger
from helios_live.ledger.records import all_items
from helios_live.settings import HeliosSettings

ASSET = "allocation_targets"
JOB = "allocation_job"
RANKS = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
MAX_FIRED = 1000  # event ids the sensor's cursor remembers (an event is rewritten as it changes)
OVERLAP = timedelta(minutes=10)


class AllocationRun(dg.Config):
    as_of: str = ""  # ISO 8601 with a time zone; empty: the run's start


def _as_of(text: str, now: datetime) -> datetime:
    if not text:
        return now
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"as_of {text!r} has no time zone")
    if value > now:
        raise ValueError(f"as_of {text!r} is in the future: nothing is known about it yet")
    return value.astimezone(UTC)


def _time(value: Any) -> datetime:
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def risk_request(
    events: Iterable[dict[str, Any]], cursor: str | None, lowest: str, now: datetime
) -> tuple[dg.RunRequest | dg.SkipReason, str]:
    """One run for the events at or above `lowest` (now or at their peak) not yet acted on, and
    the next cursor: {"since": newest last_seen read (`now` when none was ever read), "fired":
    ids already acted on}."""
    state = json.loads(cursor) if cursor else {"since": None, "fired": []}
    fired: list[str] = list(state["fired"])
    seen = set(fired)
    since = _time(state["since"]) if state["since"] else None
    new: list[dict[str, Any]] = []
    for event in events:
        last = _time(event["last_seen"])
        since = last if since is None or last > since else since
        rank = max(RANKS.get(str(event["severity"]), 0), RANKS.get(str(event.get("peak")), 0))
        if rank >= RANKS[lowest] and event["event_id"] not in seen:
            new.append(event)
            seen.add(event["event_id"])
    since = since or now  # an event that starts and ends before the next tick is still seen
    ids = sorted(str(e["event_id"]) for e in new)
    next_cursor = json.dumps({"since": since.isoformat(), "fired": (fired + ids)[-MAX_FIRED:]})
    if not ids:
        return dg.SkipReason(f"no new security event at {lowest} or above"), next_cursor
    joined = ",".join(ids)
    key = joined if len(joined) <= 200 else hashlib.sha256(joined.encode()).hexdigest()
    worst = max(new, key=lambda e: RANKS.get(str(e["severity"]), 0))
    tags = {"helios/trigger": "security_event", "helios/events": str(len(ids)), "helios/worst": str(worst["severity"])}
    return dg.RunRequest(run_key=f"risk:{key}", tags=tags), next_cursor


def _events(ledger: Ledger, since: str | None) -> list[dict[str, Any]]:
    """Events seen since the cursor (oldest first); on the first tick, only the active ones: a
    sensor started on a year of history must not act on all of it."""
    # monitors write in their own order: read a little before the cursor (the fired ids dedupe)
    start = _time(since) - OVERLAP if since else None
    return all_items(ledger.security_events, since=start, active=None if start else True)[::-1]


def build(settings: HeliosSettings) -> dg.Definitions:
    @dg.asset(
        name=ASSET,
        group_name="allocation",
        description="Tier 5 target weights (Black-Litterman with the model's views), written to the ledger.",
    )
    def allocation_targets(context: dg.AssetExecutionContext, config: AllocationRun) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        as_of = _as_of(config.as_of, now)
        ledger = Ledger(settings.resolved_database_url)
        try:
            data = load_data(settings, ledger, as_of)
            targets = allocate(data, settings.allocation, now)
            row = ledger.record_targets(targets, source="dagster")
        finally:
            ledger.close()
        if targets.fallback:
            context.log.warning(f"allocation fell back ({targets.method}): {targets.fallback}")
        context.log.info(f"targets {row} ({targets.method}): {dict(targets.weights)}")
        return dg.MaterializeResult(
            metadata={
                "targets_id": row,
                "weights": dg.MetadataValue.json(dict(targets.weights)),
                "method": targets.method,
                "fallback": dg.MetadataValue.text(targets.fallback) if targets.fallback else dg.MetadataValue.null(),
                "as_of": targets.as_of.isoformat(),
                "kept_previous": bool(targets.inputs.get("kept_previous")),
                "inputs": dg.MetadataValue.json(dict(targets.inputs)),
            }
        )

    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(allocation_targets))

    # 00:15 UTC: yesterday's last candle has closed and landed, as for the daily pipeline.
    @dg.schedule(
        name="allocation_daily",
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def allocation_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"allocation-{context.scheduled_execution_time:%Y-%m-%d}")

    @dg.sensor(
        name="allocation_on_risk_event",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Recompute the targets when a security event at allocation.emergency or above starts.",
    )
    def allocation_on_risk_event(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        since = json.loads(context.cursor)["since"] if context.cursor else None
        ledger = Ledger(settings.resolved_database_url)
        try:
            events = _events(ledger, since)
        finally:
            ledger.close()
        request, cursor = risk_request(events, context.cursor, settings.allocation.emergency, datetime.now(UTC))
        context.update_cursor(cursor)
        return request

    return dg.Definitions(assets=[allocation_targets], jobs=[job], schedules=[allocation_daily],
                          sensors=[allocation_on_risk_event])  # fmt: skip
