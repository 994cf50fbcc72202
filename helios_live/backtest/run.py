"""A backtest from end to end: the candles from the lake, the kernel through the backtester, the
metrics beside buy-and-hold and the random-entry baseline, and the report (HTML and JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from helios_core.evaluation.baselines import buy_and_hold, percentile_rank, random_entries
from helios_core.evaluation.metrics import Trade, calibration, drawdown, metrics, monthly_returns, per_pair
from helios_core.evaluation.report import write_report
from helios_core.market import Book
from helios_core.timeframes import Timeframe
from helios_live.backtest.allocation import Allocating, compare_allocation
from helios_live.backtest.backtester import Backtester, BacktestError, Market, Progress, Simulation
from helios_live.backtest.compare import compare
from helios_live.backtest.paper import market_of, paper_simulation
from helios_live.data.lake import Lake
from helios_live.data.recorded import CANDLE_FIELDS, Recorded, epoch_seconds
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings

RANDOM_QUANTILE = 0.95  # beating random entry means beating 95% of its draws: more than noise
PRICE_POINTS = 5_000  # closes per pair kept for the report's price chart
FILLS = {
    "candles": "next candle open; stops and targets at their price inside a candle",
    "paper": "paper trading's: the recorded book, else the last trade, plus slippage",
}
NOTES = {
    "candles": [
        "Orders fill at the next candle's open plus slippage, never at the close that made the signal;"
        " a stop or take-profit inside a candle fills at its price (1m candles resolve a coarser base"
        " candle where the lake has them); a candle touching both takes the stop.",
        "Positions still open when the data ends close at the last close (END_OF_TEST).",
    ],
    "paper": [
        "Recorded trades replayed through the kernel with paper trading's fill model, as the live"
        " service would have traded them (the replay-versus-live parity test holds this path).",
        "Positions still open when the data ends stay open: the equity marks them at the last snapshot.",
    ],
}


@dataclass(frozen=True)
class BacktestResult:
    report: dict[str, Any]
    html: Path
    json: Path
    ledger: Path
    simulation: Simulation


def base_timeframe(settings: HeliosSettings, model_version: str) -> str:
    """The timeframe the model decides on (its training base; 1m for a bundle that names none)."""
    return str(Registry(settings.models_root).get(model_version).meta.get("base_timeframe", "1m"))


def load_market(
    lake: Lake, pairs: Sequence[str], base: str, start: datetime, end: datetime, warmup_days: int
) -> Market:
    """Each pair's base candles from `warmup_days` before `start` to `end`, and its 1m candles
    for the period when the base is coarser."""
    first, last = (start - timedelta(days=warmup_days)).date(), end.date()
    frames = {p: _read(lake, p, base, first, last) for p in pairs}
    fine = {}
    if Timeframe.parse(base).seconds > 60:
        fine = {p: f for p in pairs if not (f := _read(lake, p, "1m", start.date(), last)).empty}
    return Market(base, {p: f for p, f in frames.items() if not f.empty}, fine)


def _read(lake: Lake, pair: str, timeframe: str, first: Any, last: Any) -> pd.DataFrame:
    frame = lake.read_range("candles", pair, timeframe, first, last)
    return frame if frame.empty else frame.loc[:, list(CANDLE_FIELDS)].reset_index(drop=True)


def run_backtest(
    settings: HeliosSettings,
    *,
    model_version: str,
    pairs: Sequence[str],
    start: datetime,
    end: datetime,
    out_dir: Path,
    market: Market | None = None,
    lake: Lake | None = None,
    seed: int = 0,
    random_runs: int = 50,
    progress: Progress | None = None,
    fills: Literal["candles", "paper"] = "candles",
    recorded: Recorded | None = None,
    books: Mapping[str, Sequence[Book]] | None = None,
    compare_approval: int = 0,
    allocating: Allocating | None = None,
) -> BacktestResult:
    """Backtest `model_version` on `pairs` over [start, end) into `out_dir` (which must not hold a
    backtest already): its ledger, `report.html` and `report.json`.

    `fills="candles"` (the default): orders fill at the next candle's open (`backtester`), on
    `market` or the lake's candles. `fills="paper"`: the `recorded` trades (and `books`) through
    paper trading's fill model, as the live service would have traded them (`paper`).

    `compare_approval` > 0: the same backtest again without Tier 4 and with that many seeded
    random-veto draws at the approver's own veto rate, side by side in the report (candles only).

    `allocating` builds Tier 5's optimiser for the market: the backtest then runs with the
    allocation (targets computed at each daily check from what it has seen) and again without,
    side by side in the report (candles only)."""
    if not start < end:
        raise BacktestError(f"the backtest's start {start} is not before its end {end}")
    ledger = out_dir / "ledger.sqlite"
    if ledger.exists():
        raise BacktestError(f"{out_dir} holds a backtest already: choose another directory or delete it")
    out_dir.mkdir(parents=True, exist_ok=True)
    begin, finish = start.timestamp(), end.timestamp()
    if fills == "paper":
        if compare_approval or allocating is not None:
            raise BacktestError("the comparisons run on the candle fill model, not on recorded trades")
        if recorded is None:
            raise BacktestError("the paper fill model replays recorded trades: pass `recorded`")
        live = settings.live.model_copy(update={"pairs": tuple(pairs), "candles": "trades"})
        own = settings.model_copy(update={"live": live, "database_url": f"sqlite:///{ledger.resolve()}"})
        run = paper_simulation(
            own, recorded, model_version=model_version, start=begin, end=finish, books=books, lake=lake
        )
        simulation = asyncio.run(run)
        return _reported(own, simulation, market_of(recorded), model_version, begin, finish, seed, random_runs, out_dir)
    if market is None:
        if lake is None:
            raise BacktestError("a backtest needs candles: a market or a lake to read them from")
        base = base_timeframe(settings, model_version)
        market = load_market(lake, pairs, base, start, end, settings.live.warmup_days)
    missing = sorted(set(pairs) - set(market.base))
    if missing:
        raise BacktestError(f"no candles for {missing} in the backtest's period")
    live = settings.live.model_copy(update={"pairs": tuple(pairs), "close_grace_s": 0.0, "candles": "buckets"})
    own = settings.model_copy(update={"live": live, "database_url": f"sqlite:///{ledger.resolve()}"})
    allocator = None if allocating is None else allocating(own, market)
    backtester = Backtester(own, market, model_version, lake=lake, allocator=allocator)
    simulation = asyncio.run(backtester.run(begin, finish, progress))
    approval = None
    if compare_approval > 0:
        approval = compare(
            own, market, model_version, simulation, begin, finish, out_dir,
            draws=compare_approval, seed=seed, lake=lake, progress=progress, allocator=allocator,
        )  # fmt: skip
    allocation = None
    if allocating is not None:
        allocation = compare_allocation(
            own, market, model_version, simulation, own.resolved_database_url, begin, finish, out_dir,
            lake=lake, progress=progress,
        )  # fmt: skip
    result = _reported(own, simulation, market, model_version, begin, finish, seed, random_runs, out_dir, approval,
                       allocation)  # fmt: skip
    return result


def _reported(
    settings: HeliosSettings,
    simulation: Simulation,
    market: Market,
    model_version: str,
    start: float,
    end: float,
    seed: int,
    runs: int,
    out_dir: Path,
    approval: dict[str, Any] | None = None,
    allocation: dict[str, Any] | None = None,
) -> BacktestResult:
    report = evaluate(settings, simulation, market, model_version, start, end, seed=seed, runs=runs)
    if allocation is not None:
        report["allocation"] = allocation
        report["notes"].append(
            "Tier 5 allocation comparison: the same backtest without the allocation step and its"
            " rebalancing; with it, targets are computed at each daily check from the candles and"
            " predictions the backtest had seen by then."
        )
    if approval is not None:
        report["approval"] = approval
        report["notes"].append(
            f"Tier 4 comparison: the same backtest without the approval step, and with"
            f" {approval['random_veto']['draws']} seeded draws of random vetoes at the approver's veto"
            " rate (each draw a hash of seed, pair and time; approved proposals unchanged)."
        )
    html, data = write_report(report, out_dir)
    return BacktestResult(report, html, data, out_dir / "ledger.sqlite", simulation)


def evaluate(
    settings: HeliosSettings,
    simulation: Simulation,
    market: Market,
    model_version: str,
    start: float,
    end: float,
    *,
    seed: int,
    runs: int,
) -> dict[str, Any]:
    """The report's figures: the model's metrics, the baselines on the same candles, the charts'
    series and the calibration of the model's confidence against the outcomes."""
    capital = settings.trading.capital
    fills = settings.paper.fill_model()
    times, equity, trades = simulation.times, simulation.equity, simulation.trades
    period = {p: _period(f, start, end) for p, f in market.base.items()}
    costs = {"taker_fee": fills.taker_fee, "slippage_bps": fills.slippage_bps}
    model = metrics(times, equity, trades, capital=capital)
    hold_equity, hold_trades = buy_and_hold(period, times=times, start=start, end=end, capital=capital, **costs)
    hold = metrics(times, hold_equity, hold_trades, capital=capital)
    random = random_entries(
        period, trades, runs=runs, seed=seed, times=times, start=start, end=end, capital=capital, **costs
    )
    rank = percentile_rank(model["sharpe"], random["samples"]["sharpe"])
    beats_hold = _above(model["sharpe"], hold["sharpe"])
    beats_random = rank is not None and rank >= RANDOM_QUANTILE
    scored = simulation.scored
    confidence = np.array([s[3] for s in scored], dtype="float64")
    correct = np.array([s[4] for s in scored], dtype=bool)
    return {
        "title": f"Backtest of {model_version}",
        "model": model_version,
        "pairs": sorted(period),
        "start": _iso(start),
        "end": _iso(end),
        "timeframe": market.timeframe,
        "fill_model": {**costs, "fills": FILLS[simulation.fills]},
        "decisions": simulation.decisions,
        "metrics": {"overall": model, "per_pair": per_pair(times, trades, capital=capital)},
        "baselines": {
            "buy_and_hold": hold,
            "random_entry": {
                "runs": random["runs"],
                "seed": random["seed"],
                "median": random["median"],
                "p95": random["p95"],
                "model_sharpe_rank": rank,
            },
        },
        "verdict": {
            "beats_buy_and_hold": beats_hold,
            "beats_random": beats_random,
            "summary": _summary(model, hold, rank, beats_hold, beats_random, len(trades)),
        },
        "equity": {
            "t": times.tolist(),
            "model": equity.tolist(),
            "buy_and_hold": np.asarray(hold_equity).tolist(),
            "random_median": list(random["equity_median"]),
        },
        "drawdown": {"t": times.tolist(), "model": drawdown(equity).tolist()},
        "prices": {p: _prices(f) for p, f in sorted(period.items())},
        "trades": [_trade_row(t) for t in trades],
        "monthly_returns": monthly_returns(times, equity),
        "calibration": calibration(confidence, correct),
        "errors": simulation.errors,
        "notes": [
            *NOTES[simulation.fills],
            f"Orders still waiting for a fill when the data ended, cancelled: {simulation.orders_cancelled}.",
            f"Random entry: {runs} seeded draws (seed {seed}) of as many trades as the model made, on the"
            " same pairs with the same holding times and sizes, random sides and entry times.",
            "Per-pair figures count realised P&L only, at each trade's close.",
            "Sharpe, Sortino and CAGR are annualised over 365 days; n/a marks a figure that is undefined"
            " (no trades, no losses, a flat curve).",
        ],
    }


def _period(frame: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    opens = (frame["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return frame.loc[(opens >= start) & (opens < end)].reset_index(drop=True)


def _prices(frame: pd.DataFrame) -> dict[str, list[float]]:
    every = max(1, len(frame) // PRICE_POINTS)
    sample = frame.iloc[::every]
    return {"t": [epoch_seconds(t) for t in sample["ts"]], "close": sample["close"].astype(float).tolist()}


def _trade_row(trade: Trade) -> dict[str, Any]:
    keys = ("pair", "side", "opened_at", "closed_at", "entry_price", "exit_price", "pnl", "reason")
    return {k: getattr(trade, k) for k in keys}


def _above(a: float | int | None, b: float | int | None) -> bool:
    return a is not None and b is not None and a > b


def _summary(
    model: Mapping[str, Any], hold: Mapping[str, Any], rank: float | None, beats_hold: bool, beats_random: bool, n: int
) -> str:
    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{value:+.2%}"

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    figures = (
        f"return {pct(model['total_return'])} (buy-and-hold {pct(hold['total_return'])}), Sharpe"
        f" {num(model['sharpe'])} (buy-and-hold {num(hold['sharpe'])}), {n} trades"
    )
    standing = "n/a" if rank is None else f"above {rank:.0%} of random-entry draws"
    if beats_hold and beats_random:
        return f"The model beats both baselines on Sharpe: {figures}; {standing}."
    lost = [name for name, won in (("buy-and-hold", beats_hold), ("random entry", beats_random)) if not won]
    return f"The model does NOT beat {' or '.join(lost)} on Sharpe: {figures}; Sharpe {standing}."


def _iso(ts: float) -> str:
    return str(pd.Timestamp(ts, unit="s", tz="UTC").isoformat())
