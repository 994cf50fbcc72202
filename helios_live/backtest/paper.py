"""A backtest on recorded trades (and books) with paper trading's own fill model: the recording
through `runner.replay`, the very path the parity test holds equal to the live service row for
row, with the figures read back from its ledger. Use it where trades were recorded; on candles
alone the candle fill model (`backtester`) is the one that does not fill on the signal's close."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from helios_core.candles import trades_to_candles, validate_trades
from helios_core.market import Book
from helios_core.timeframes import Timeframe
from helios_live.backtest.backtester import BacktestError, Market, Simulation, closed_trade
from helios_live.backtest.runner import replay
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, epoch_seconds
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings


def _before(frame: pd.DataFrame, end: float) -> pd.DataFrame:
    return frame.loc[frame["ts"] < pd.Timestamp(end, unit="s", tz="UTC")].reset_index(drop=True)


def market_of(recorded: Recorded) -> Market:
    """The 1m candles the baselines are priced on: the recording's, else built from its trades."""
    candles = dict(recorded.candles)
    for pair, trades in recorded.trades.items():
        if pair not in candles and not trades.empty:
            until = trades["ts"].max().floor("min") + pd.Timedelta(minutes=1)
            candles[pair] = trades_to_candles(validate_trades(trades, pair), Timeframe.parse("1m"), until)
    return Market(recorded.timeframe, candles)


async def paper_simulation(
    settings: HeliosSettings,
    recorded: Recorded,
    *,
    model_version: str,
    start: float,
    end: float,
    books: Mapping[str, Sequence[Book]] | None = None,
    lake: Lake | None = None,
) -> Simulation:
    """Replay `recorded` from `start` to `end` with paper execution into the settings' ledger.
    Positions still open at the end stay open (their equity is marked at the last snapshot)."""
    if not any(not t.empty for t in recorded.trades.values()):
        raise BacktestError("the paper fill model needs recorded trades: without them use the candle fill model")
    clipped = Recorded(
        candles={p: _before(f, end) for p, f in recorded.candles.items()},
        trades={p: _before(f, end) for p, f in recorded.trades.items()},
        timeframe=recorded.timeframe,
    )
    clipped_books = {p: [b for b in snaps if (b.ts or 0.0) < end] for p, snaps in (books or {}).items()}
    summary = await replay(settings, clipped, start=start, model_version=model_version, books=clipped_books, lake=lake)
    ledger = Ledger(settings.resolved_database_url)
    try:
        # The latest snapshot of each instant (a fill's and the periodic one can share it).
        curve = {t: e for at, e in ledger.equity_curve() if start <= (t := epoch_seconds(at)) <= end}
        trades = [closed_trade(p) for p in ledger.closed_positions()]
        scored = [(p, ts.timestamp(), label, conf, ok) for p, ts, label, conf, ok in ledger.scored()]
    finally:
        ledger.close()
    if len(curve) < 2:
        raise BacktestError("the replay left fewer than two portfolio snapshots in its period: nothing to measure")
    times = np.array(list(curve), dtype="float64")
    equity = np.array(list(curve.values()), dtype="float64")
    return Simulation(times, equity, trades, summary.predictions, 0, summary.errors, scored, fills="paper")
