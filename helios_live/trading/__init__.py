"""Tier 3 sizing, Tier 5 portfolio guard, positions and paper execution for the live engine."""
