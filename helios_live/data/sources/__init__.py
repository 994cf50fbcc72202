"""Market-data sources behind one interface, chosen by configuration."""

from helios_live.data.sources.base import CandleBatch, MarketDataSource
from helios_live.data.sources.file import FileSource
from helios_live.data.sources.valr import ValrRestSource

__all__ = ["CandleBatch", "FileSource", "MarketDataSource", "ValrRestSource"]
