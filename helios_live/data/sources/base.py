"""The interface every market-data source implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pandas as pd

from helios_core.timeframes import Timeframe


@dataclass(frozen=True)
class CandleBatch:
    """Validated candles of one pair for a requested window.

    The source's history is known and final on `[complete_from, complete_until)`: a candle
    ending after `complete_until` may still change, and before `complete_from` the source has
    no history, so a longer candle spanning either edge would be partial.
    """

    pair: str
    timeframe: Timeframe
    candles: pd.DataFrame
    complete_from: pd.Timestamp
    complete_until: pd.Timestamp
    origin: str


class MarketDataSource(Protocol):
    """Historical candles (and trades, where the source has them) for a pair."""

    name: str

    def fetch_candles(self, pair: str, start: datetime, end: datetime) -> CandleBatch:
        """Candles with open time in `[start, end)` at the source's native timeframe."""
        ...

    def reference_candles(self, pair: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """1m candles for `[start, end)` from a representation independent of `fetch_candles`
        (recorded candles vs trades), or None where the source has only one."""
        ...
