"""Analytics: the ledgers exported to the lake, the dbt project over both, its job and schedule."""

from __future__ import annotations

import dagster as dg

from helios_dagster.defs.analytics.dbt import build_dbt_assets
from helios_dagster.defs.analytics.ledger import build_ledger_export
from helios_live.settings import HeliosSettings

JOB = "analytics_job"


def build(settings: HeliosSettings) -> dg.Definitions:
    ledger_export = build_ledger_export(settings)
    marts, dbt = build_dbt_assets(settings)
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(ledger_export, marts))

    # 02:00 UTC: after the daily pipeline (00:15) and the allocation targets have landed.
    @dg.schedule(
        name="analytics_daily",
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def analytics_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"analytics-{context.scheduled_execution_time:%Y-%m-%d}")

    return dg.Definitions(
        assets=[ledger_export, marts], jobs=[job], schedules=[analytics_daily], resources={"dbt": dbt}
    )


__all__ = ["JOB", "build"]
