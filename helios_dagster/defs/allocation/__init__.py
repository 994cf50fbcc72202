"""Tier 5 allocation's batch side: the daily target weights, and a recompute on security events."""

from helios_dagster.defs.allocation.targets import build

__all__ = ["build"]
