"""Dagster resources: the lake and the market-data source, configured from settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from helios_core.errors import ConfigurationError
from helios_live.data.lake import Lake
from helios_live.data.sources import FileSource, MarketDataSource
from helios_live.settings import HeliosSettings
from helios_live.venues.valr.rest import ValrRestSource


class LakeResource(dg.ConfigurableResource):
    """Where the Parquet lake lives."""

    root: str

    def lake(self) -> Lake:
        return Lake(Path(self.root))


class MarketDataResource(dg.ConfigurableResource):
    """Which market-data source feeds `raw_candles`: `file` or `valr`."""

    kind: str = "file"
    file_dir: str = "data/sample"
    file_imports: dict[str, str] = Field(default_factory=dict)
    valr_base_url: str = "https://api.valr.com"
    timeout_s: float = 10.0
    max_retries: int = 5
    check_reference: bool = True

    def open(self) -> MarketDataSource:
        if self.kind == "file":
            if self.file_imports:
                return FileSource(files={pair: [Path(p)] for pair, p in self.file_imports.items()})
            return FileSource(directory=Path(self.file_dir))
        if self.kind == "valr":
            return ValrRestSource(self.valr_base_url, timeout_s=self.timeout_s, max_retries=self.max_retries)
        raise ConfigurationError(f"unknown market-data source {self.kind!r}; expected 'file' or 'valr'")


def market_data_from(settings: HeliosSettings, **overrides: object) -> MarketDataResource:
    fields: dict[str, object] = {
        "kind": settings.source,
        "file_dir": str(settings.file_dir),
        "valr_base_url": settings.valr.base_url,
        "timeout_s": settings.http.timeout_s,
        "max_retries": settings.http.max_retries,
    }
    fields.update(overrides)
    # Rebuilding a VALR day from its trades costs ~100 paged requests per pair-day, so the
    # reference check runs by default only where both records are local files.
    fields.setdefault("check_reference", fields["kind"] == "file")
    return MarketDataResource(**fields)  # type: ignore[arg-type]


def resources_from(settings: HeliosSettings) -> dict[str, object]:
    return {"lake": LakeResource(root=str(settings.lake_root)), "market_data": market_data_from(settings)}
