"""Tier 5's optimiser for a backtest: at each daily check, the same `allocate` the Dagster asset
runs, on the daily bars of the candles that had closed by then and the backtest's own
predictions of the views' window. Nothing from after the check reaches it."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from helios_core.allocation.data import AllocationData, daily_frames
from helios_core.allocation.targets import Targets
from helios_core.allocation.views import views
from helios_core.timeframes import as_datetime
from helios_dagster.allocation.optimise import allocate
from helios_live.backtest.backtester import Market
from helios_live.settings import HeliosSettings
from helios_live.trading.allocation import Allocator, Prediction


def backtest_allocator(settings: HeliosSettings, market: Market) -> Allocator:
    pairs = [p for p in settings.live.pairs if p in market.base]
    # The finest candles there are: a day's close is the close of its last candle either way.
    candles: Mapping[str, pd.DataFrame] = {p: market.fine.get(p, market.base[p]) for p in pairs}

    def allocator(now: float, rows: list[Prediction], previous: Targets | None) -> Targets:
        as_of = as_datetime(now)
        closes, volumes = daily_frames(candles, as_of)
        found = views(rows, move=settings.label.up)
        return allocate(AllocationData(as_of, closes, volumes, found, previous), settings.allocation, as_of)

    return allocator
