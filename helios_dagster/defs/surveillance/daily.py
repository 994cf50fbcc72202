"""The batch side of surveillance: each day's deviation checks and liquidations from the ledger
into the lake (`surveillance_deviations`, `surveillance_liquidations`, one partition per venue,
asset and day, for dbt), the batch twins over them beside what the monitors recorded, and the
retention job that deletes surveillance rows older than `surveillance.retention_days`."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from helios_core.surveillance.cascade import CascadeConfig, cascade_batch, judge
from helios_core.surveillance.deviation import DeviationConfig, deviation_batch
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.ledger.surveillance import TABLES
from helios_live.settings import HeliosSettings
from helios_live.surveillance.monitor import configs

DATASET = "surveillance_deviations"
LIQUIDATIONS = "surveillance_liquidations"
SEVERITY_CODES = {None: 0, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def twin(frame: pd.DataFrame, config: DeviationConfig) -> dict[str, Any]:
    """The batch twin over one asset's checks of a day: its severities, sustained flags and
    onsets beside the monitor's, and the day's figures. The reference each check used (the
    median of its fresh quotes, crossed where it was) is the input: quorum 1 on that column."""
    frame = frame.sort_values("ts")
    ts = frame["ts"].map(lambda t: t.timestamp()).to_numpy(dtype=float)
    price = frame["price"].to_numpy(dtype=float, na_value=np.nan)
    ref = frame["reference"].to_numpy(dtype=float, na_value=np.nan)
    one = DeviationConfig(
        config.warning_pct, config.high_pct, config.critical_pct, config.max_age_s, 1, config.sustained_s
    )
    batch = deviation_batch(ts, price, ref[:, None], ts[:, None], one)
    recorded = frame["severity"].map(lambda s: SEVERITY_CODES.get(s, 0)).to_numpy()
    sustained = frame["sustained"].to_numpy(dtype=bool)
    # a check without a reference neither starts nor ends an onset; the monitor's first check of
    # the day may continue an onset from yesterday, which the batch of this day cannot see
    onset_rec = frame["onset"].map(lambda t: t.timestamp() if t is not None and not pd.isna(t) else np.nan).to_numpy()
    disagree = int(np.sum(batch.severity != recorded)) + int(np.sum(batch.sustained != sustained))
    carried = np.isfinite(onset_rec) & np.isfinite(batch.onset) & (onset_rec < ts[0])
    onset_diff = ~np.isclose(np.nan_to_num(onset_rec, nan=-1), np.nan_to_num(batch.onset, nan=-1)) & ~carried
    size = np.abs(batch.deviation_pct)
    return {
        "checks": len(frame),
        "without_reference": int(np.sum(~np.isfinite(batch.deviation_pct))),
        "max_abs_deviation_pct": float(np.nanmax(size)) if np.isfinite(size).any() else None,
        "high_or_worse": int(np.sum(batch.severity >= 3)),
        "sustained": int(np.sum(batch.sustained)),
        "disagreements": disagree + int(np.sum(onset_diff)),
    }


def cascade_twin(liquidations: pd.DataFrame, checks: pd.DataFrame, config: CascadeConfig) -> dict[str, Any]:
    """The batch twin of one asset's cascade checks of a day: each recorded check recomputed from
    the liquidations the detector counted (the day's and the window before it)."""
    ts = liquidations["ts"].map(lambda t: t.timestamp()).to_numpy(dtype=float)
    at = checks["ts"].map(lambda t: t.timestamp()).to_numpy(dtype=float)
    counts = cascade_batch(
        ts, (liquidations["side"] == "long").to_numpy(), liquidations["notional"].to_numpy(), at, config
    )
    disagree = 0
    cascades = 0
    for (longs, shorts, notional), (_, check) in zip(counts, checks.iterrows(), strict=True):
        reading = judge(check["asset"], 0.0, longs, shorts, notional, None, config)
        cascades += reading.severity is not None
        severity = None if pd.isna(check["severity"]) else str(check["severity"])
        recorded = (int(check["longs"]), int(check["shorts"]), severity)
        disagree += (longs, shorts, None if reading.severity is None else str(reading.severity)) != recorded
        disagree += not np.isclose(notional, float(check["notional"]), rtol=1e-12)
    return {"checks": len(checks), "liquidations": len(liquidations), "cascades": cascades, "disagreements": disagree}


def _day(ledger: Ledger, table: str, start: datetime, end: datetime) -> pd.DataFrame:
    rows = ledger.surveillance_between(table, start, end)
    columns = [c.name for c in TABLES[table].__table__.columns]
    return pd.DataFrame(rows, columns=columns)


def build(settings: HeliosSettings) -> dg.Definitions:
    start = max(settings.history_start, (datetime.now(UTC) - timedelta(days=365)).date())
    days = dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")
    config, cascade_config = configs(settings.surveillance)

    @dg.asset(
        name="surveillance_daily",
        group_name="surveillance",
        partitions_def=days,
        description="The day's deviation checks from the ledger into the lake, and the batch twin over them.",
    )
    def surveillance_daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        day = datetime.fromisoformat(context.partition_key).replace(tzinfo=UTC)
        end = day + timedelta(days=1)
        ledger = Ledger(settings.resolved_database_url)
        try:
            frame = _day(ledger, "oracle_deviations", day, end)
            window_start = day - timedelta(seconds=cascade_config.window_s)
            liquidations = _day(ledger, "liquidations", window_start, end)
            patterns = _day(ledger, "liquidation_patterns", day, end)
        finally:
            ledger.close()
        lake = Lake(settings.lake_root)
        summary: dict[str, Any] = {}
        for (venue, asset), group in frame.groupby(["venue", "asset"]) if len(frame) else []:
            part = group.drop(columns=["id"]).reset_index(drop=True)
            lake.write(DATASET, f"{venue}-{asset}", "1m", day.date(), part, {})
            summary[f"{venue}/{asset}"] = twin(group, config)
        cascades: dict[str, Any] = {}
        for (venue, asset), checks in patterns.groupby(["venue", "asset"]) if len(patterns) else []:
            mine = liquidations[(liquidations["venue"] == venue) & (liquidations["asset"] == asset)]
            cascades[f"{venue}/{asset}"] = cascade_twin(mine, checks, cascade_config)
        for (venue, asset), group in liquidations.groupby(["venue", "asset"]) if len(liquidations) else []:
            today = group[group["ts"] >= day].drop(columns=["id"]).reset_index(drop=True)
            if len(today):
                lake.write(LIQUIDATIONS, f"{venue}-{asset}", "event", day.date(), today, {})
        disagreements = sum(s["disagreements"] for s in [*summary.values(), *cascades.values()])
        context.log.info(
            f"{len(frame)} deviation checks over {len(summary)} assets, {len(patterns)} cascade checks, "
            f"{disagreements} disagreements with the monitors"
        )
        return dg.MaterializeResult(
            metadata={
                "checks": len(frame),
                "assets": dg.MetadataValue.json(summary),
                "cascades": dg.MetadataValue.json(cascades),
                "disagreements": disagreements,
            }
        )

    @dg.asset_check(asset=surveillance_daily, description="The batch twin finds what the monitors recorded.")
    def surveillance_batch_agrees(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        materialization = context.instance.get_latest_materialization_event(surveillance_daily.key)
        found = materialization.asset_materialization if materialization is not None else None
        value = found.metadata.get("disagreements") if found is not None else None
        count = int(value.value) if value is not None else 0
        return dg.AssetCheckResult(passed=count == 0, metadata={"disagreements": count})

    @dg.op(description="Delete surveillance rows (and ended events) older than the retention window.")
    def prune_surveillance(context: dg.OpExecutionContext) -> dict[str, int]:
        before = datetime.now(UTC) - timedelta(days=settings.surveillance.retention_days)
        ledger = Ledger(settings.resolved_database_url)
        try:
            removed = ledger.prune_surveillance(before)
        finally:
            ledger.close()
        context.log.info(f"removed before {before.isoformat()}: {removed}")
        context.add_output_metadata({**removed, "before": before.isoformat()})
        return removed

    @dg.job(name="surveillance_retention", description="Surveillance rows older than the retention window, deleted.")
    def retention() -> None:
        prune_surveillance()

    schedule = dg.ScheduleDefinition(
        name="surveillance_retention_daily",
        job=retention,
        cron_schedule="30 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return dg.Definitions(
        assets=[surveillance_daily], asset_checks=[surveillance_batch_agrees], jobs=[retention], schedules=[schedule]
    )
