"""The Dagster code location: `dagster dev` loads `defs` from here (see workspace.yaml)."""

import dagster as dg

from helios_dagster.defs import allocation, analytics
from helios_dagster.defs.allocation.attribution import ATTRIBUTION_ASSETS
from helios_dagster.defs.features import definitions as features
from helios_dagster.defs.market_data import definitions as market_data
from helios_dagster.defs.model import definitions as model
from helios_dagster.defs.surveillance import daily as surveillance
from helios_dagster.defs.surveillance.anomaly import ANOMALY_ASSETS, ANOMALY_CHECKS
from helios_dagster.partitions import pair_day_partitions
from helios_dagster.resources import resources_from
from helios_dagster.schedules import PIPELINE, build_schedule
from helios_live.settings import HeliosSettings, load_settings


def build_defs(settings: HeliosSettings, **resource_overrides: object) -> dg.Definitions:
    """All Helios definitions; tests and the CLI swap resources (a different source) by name."""
    partitions = pair_day_partitions(settings)
    pipeline = dg.define_asset_job(PIPELINE, selection=dg.AssetSelection.groups("market_data", "features"))
    return dg.Definitions.merge(
        market_data.build(settings, partitions),
        features.build(settings, partitions),
        model.build(settings),
        dg.Definitions(assets=ANOMALY_ASSETS, asset_checks=ANOMALY_CHECKS),
        surveillance.build(settings),
        allocation.build(settings),
        dg.Definitions(assets=ATTRIBUTION_ASSETS),
        analytics.build(settings),
        dg.Definitions(
            jobs=[pipeline],
            schedules=[build_schedule(settings, pipeline)],
            resources=resources_from(settings) | resource_overrides,
        ),
    )


defs = build_defs(load_settings())
