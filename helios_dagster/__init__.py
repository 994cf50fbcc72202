"""Helios batch side: Dagster assets, checks, schedules and the `helios` CLI."""
