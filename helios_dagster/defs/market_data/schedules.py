"""Daily schedule: yesterday's partitions for every configured pair."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg

from helios_dagster.partitions import DATE, PAIR
from helios_live.settings import HeliosSettings


def build_schedule(settings: HeliosSettings, job: dg.JobDefinition | Any) -> dg.ScheduleDefinition:
    # 00:15 UTC: the exchange has closed yesterday's last candle well before the run starts.
    @dg.schedule(
        name="daily_market_data",
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_market_data(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        for pair in settings.pairs:
            yield dg.RunRequest(
                run_key=f"{pair}|{yesterday}", partition_key=dg.MultiPartitionKey({PAIR: pair, DATE: yesterday})
            )

    return daily_market_data
