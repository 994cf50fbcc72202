"""The allocation's inputs from the lake and the ledger, as of one moment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from helios_core.allocation.data import AllocationData, daily_frames, last_whole_day
from helios_core.allocation.views import views
from helios_core.bars import STEP
from helios_core.timeframes import Timeframe
from helios_core.trading.orders import require_aware
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings

CANDLES = "candles"


def read_candles(lake: Lake, settings: HeliosSettings, as_of: datetime) -> dict[str, pd.DataFrame]:
    """Each pair's candles of its finest configured timeframe in the lake (1m where there are
    any) over the days the window and the volume prior need; empty for a pair with none."""
    days = max(settings.allocation.window_days + 1, settings.allocation.prior_days)
    last = last_whole_day(as_of).date()
    first = last - timedelta(days=days)
    out: dict[str, pd.DataFrame] = {}
    for pair in sorted(settings.live.pairs):  # what the engine trades, not every pair in the lake
        out[pair] = pd.DataFrame()
        for timeframe in sorted(settings.timeframes, key=Timeframe.parse):
            frame = lake.read_range(CANDLES, pair, timeframe, first, last)
            if not frame.empty:
                out[pair] = frame
                break
    return out


def load_data(settings: HeliosSettings, ledger: Ledger, as_of: datetime) -> AllocationData:
    """Daily bars of the traded pairs (`settings.live.pairs`) from the lake, views from the predictions of the last
    `allocation.view_hours` and the targets in force, all known by `as_of`."""
    require_aware("as_of", as_of)
    closes, volumes = daily_frames(read_candles(Lake(settings.lake_root), settings, as_of), as_of)
    since = as_of - timedelta(hours=settings.allocation.view_hours)
    # a prediction on a candle is made when the candle closes: the last one known by as_of opened
    # one base candle before it
    until = as_of - timedelta(seconds=STEP - 1)
    rows = ledger.prediction_probabilities(since, until)
    found = views(rows, move=settings.label.up)
    previous = ledger.latest_targets()
    if previous is not None and previous.as_of > as_of:  # computed from data after as_of: not in force then
        previous = None
    return AllocationData(as_of, closes, volumes, found, previous)
