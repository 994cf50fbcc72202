"""Does Tier 5 allocation add value? The same backtest with the allocation (its targets computed
daily on the backtest's clock) and without it, side by side in the report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helios_core.evaluation.metrics import metrics
from helios_live.backtest.backtester import Backtester, Market, Progress, Simulation
from helios_live.backtest.compare import SHOWN
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.ledger.records import all_items
from helios_live.settings import HeliosSettings
from helios_live.trading.allocation import Allocator

# The batch side builds the optimiser for a market (helios_dagster.allocation.backtest): the
# live package has none of its own.
Allocating = Callable[[HeliosSettings, Market], Allocator]


def compare_allocation(
    settings: HeliosSettings,
    market: Market,
    model_version: str,
    with_allocation: Simulation,
    ledger_url: str,
    start: float,
    end: float,
    out_dir: Path,
    *,
    lake: Lake | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's section: `with_allocation` (the main run, its ledger at `ledger_url`) against
    the same backtest without the allocation, whose ledger goes under `out_dir`/allocation."""
    runs_dir = out_dir / "allocation"
    runs_dir.mkdir(parents=True, exist_ok=True)
    own = settings.model_copy(update={"database_url": f"sqlite:///{(runs_dir / 'without.sqlite').resolve()}"})
    if progress is not None:
        progress("allocation comparison: without")
    without = asyncio.run(Backtester(own, market, model_version, lake=lake).run(start, end))
    capital = settings.trading.capital

    def shown(simulation: Simulation) -> dict[str, Any]:
        figures = metrics(simulation.times, simulation.equity, simulation.trades, capital=capital)
        return {key: figures.get(key) for key in SHOWN}

    targets, rebalances = _history(ledger_url)
    section: dict[str, Any] = {
        "with": shown(with_allocation),
        "without": shown(without),
        "targets": len(targets),
        "fallbacks": [{"as_of": t["as_of"].isoformat(), "fallback": t["fallback"]} for t in targets if t["fallback"]],
        "latest_targets": targets[0]["weights"] if targets else None,
        "rebalances": {reason: sum(1 for r in rebalances if r["reason"] == reason) for reason in _reasons(rebalances)},
        "trim_orders": sum(len(r["orders"]) for r in rebalances),
    }
    section["summary"] = summary(section)
    return section


def _history(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ledger = Ledger(url)
    try:
        return all_items(ledger.allocation_targets), all_items(ledger.rebalances)
    finally:
        ledger.close()


def _reasons(rebalances: list[dict[str, Any]]) -> list[str]:
    return sorted({str(r["reason"]) for r in rebalances})


def summary(section: dict[str, Any]) -> str:
    """One plain sentence from the numbers, whichever way they fall."""
    if section["targets"] == 0:
        return (
            "No targets were computed (the backtest ended before its first daily check): the comparison says nothing."
        )
    with_s, without_s = section["with"].get("sharpe"), section["without"].get("sharpe")
    count = sum(section["rebalances"].values())
    tail = f"{section['targets']} daily targets ({len(section['fallbacks'])} by a fallback rule), {count} rebalances"
    if with_s is None or without_s is None:
        return (
            f"Sharpe is undefined in a run (no trades or a flat curve): the allocation cannot be judged on it; {tail}."
        )
    against = "beats" if with_s > without_s else "does NOT beat"
    return f"The allocation {against} trading without it on Sharpe ({with_s:.2f} against {without_s:.2f}); {tail}."
