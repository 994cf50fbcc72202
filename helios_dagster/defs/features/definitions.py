"""Everything of the features domain, as one `Definitions`."""

import dagster as dg

from helios_dagster.defs.features.assets import build_assets
from helios_dagster.defs.features.checks import build_checks
from helios_live.settings import HeliosSettings


def build(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> dg.Definitions:
    return dg.Definitions(assets=build_assets(settings, partitions), asset_checks=build_checks(settings, partitions))
