"""Market-data sources behind one interface, chosen by configuration (VALR's REST source lives
with the rest of VALR, in `helios_live.venues.valr.rest`)."""

from helios_live.data.sources.base import CandleBatch, MarketDataSource
from helios_live.data.sources.file import FileSource

__all__ = ["CandleBatch", "FileSource", "MarketDataSource"]
