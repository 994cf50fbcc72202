"""Helios live side: settings, market-data sources, the Parquet lake and (later) the engine.

Never imports torch or dagster, so the live process stays small and starts fast.
"""
