"""Everything of the market-data domain, as one `Definitions`."""

from __future__ import annotations

import dagster as dg

from helios_dagster.defs.market_data.assets import build_assets
from helios_dagster.defs.market_data.checks import build_checks
from helios_dagster.defs.market_data.schedules import build_schedule
from helios_dagster.partitions import pair_day_partitions
from helios_live.settings import HeliosSettings

JOB = "market_data"


def build(settings: HeliosSettings) -> dg.Definitions:
    partitions = pair_day_partitions(settings)
    assets = build_assets(settings, partitions)
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(*assets))
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(settings, partitions),
        jobs=[job],
        schedules=[build_schedule(settings, job)],
    )
