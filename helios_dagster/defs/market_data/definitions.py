"""Everything of the market-data domain, as one `Definitions`."""

import dagster as dg

from helios_dagster.defs.market_data.assets import build_assets
from helios_dagster.defs.market_data.checks import build_checks
from helios_live.settings import HeliosSettings

JOB = "market_data"


def build(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> dg.Definitions:
    assets = build_assets(settings, partitions)
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(*assets))
    return dg.Definitions(assets=assets, asset_checks=build_checks(settings, partitions), jobs=[job])
