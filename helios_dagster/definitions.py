"""The Dagster code location: `dagster dev` loads `defs` from here (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from helios_dagster.defs.market_data import definitions as market_data
from helios_dagster.resources import resources_from
from helios_live.settings import HeliosSettings, load_settings


def build_defs(settings: HeliosSettings, **resource_overrides: object) -> dg.Definitions:
    """All Helios definitions; tests and the CLI swap resources (a different source) by name."""
    resources = resources_from(settings) | resource_overrides
    return dg.Definitions.merge(market_data.build(settings), dg.Definitions(resources=resources))


defs = build_defs(load_settings())
