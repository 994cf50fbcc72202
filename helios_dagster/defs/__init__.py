"""One folder per domain; each exposes `build(settings) -> dagster.Definitions`."""
