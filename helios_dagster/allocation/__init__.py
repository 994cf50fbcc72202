"""Tier 5 allocation on the batch side: Black-Litterman with the model's views, optimised with
PyPortfolioOpt (docs/trading.md). The live service only reads the targets it writes."""

from helios_dagster.allocation.estimates import AllocationFailure
from helios_dagster.allocation.optimise import allocate

__all__ = ["AllocationFailure", "allocate"]
