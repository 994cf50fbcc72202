"""Daily schedule: the whole pipeline for the last two days, for every configured pair."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg

from helios_dagster.partitions import range_tags
from helios_live.settings import HeliosSettings

PIPELINE = "pipeline"
TRAIN_JOB = "train"


def build_schedule(settings: HeliosSettings, job: dg.JobDefinition | Any) -> dg.ScheduleDefinition:
    # 00:15 UTC: the exchange has closed yesterday's last candle well before the run starts.
    # The day before yesterday is redone too: its last labels needed yesterday's candles.
    @dg.schedule(
        name="daily_pipeline",
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_pipeline(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
        for pair in settings.pairs:
            tags = range_tags(pair, yesterday - timedelta(days=1), yesterday)
            yield dg.RunRequest(run_key=f"{pair}|{yesterday.isoformat()}", tags=tags)

    return daily_pipeline
