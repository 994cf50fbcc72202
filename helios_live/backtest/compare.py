"""Does the approver add value? The same backtest three ways: with Tier 4's approver, without
the step, and with vetoes drawn at random at the approver's own veto rate (several seeded draws),
side by side in the report."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

from helios_core.evaluation.metrics import metrics
from helios_live.approval import PassThroughApproval
from helios_live.approval.random_veto import RandomVeto
from helios_live.backtest.backtester import Backtester, Market, Progress, Simulation
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings
from helios_live.trading.allocation import Allocator

SHOWN = ("trades", "total_return", "sharpe", "max_drawdown", "win_rate")


def veto_rate(approval: dict[str, Any] | None) -> tuple[int, int, float]:
    """(decisions that reached the approval step, vetoes, their rate) of one run."""
    verdicts = (approval or {}).get("verdicts") or {}
    reached = sum(verdicts.values())
    vetoes = int(verdicts.get("REJECT", 0))
    return reached, vetoes, vetoes / reached if reached else 0.0


def compare(
    settings: HeliosSettings,
    market: Market,
    model_version: str,
    with_approver: Simulation,
    start: float,
    end: float,
    out_dir: Path,
    *,
    draws: int,
    seed: int,
    lake: Lake | None = None,
    progress: Progress | None = None,
    allocator: Allocator | None = None,
) -> dict[str, Any]:
    """The report's section; each extra run's ledger under `out_dir`/approval. `allocator`: the
    main run's Tier 5 allocation, so that every run differs from it by Tier 4 alone."""
    capital = settings.trading.capital
    reached, vetoes, rate = veto_rate(with_approver.approval)
    failures = sum(((with_approver.approval or {}).get("failures") or {}).values())
    runs_dir = out_dir / "approval"
    runs_dir.mkdir(parents=True, exist_ok=True)

    def run(name: str, **kwargs: Any) -> Simulation:
        own = settings.model_copy(update={"database_url": f"sqlite:///{(runs_dir / f'{name}.sqlite').resolve()}"})
        if progress is not None:
            progress(f"approval comparison: {name}")
        backtester = Backtester(own, market, model_version, lake=lake, allocator=allocator, **kwargs)
        return asyncio.run(backtester.run(start, end))

    def shown(simulation: Simulation) -> dict[str, Any]:
        figures = metrics(simulation.times, simulation.equity, simulation.trades, capital=capital)
        return {key: figures.get(key) for key in SHOWN}

    without = run("without", approval=PassThroughApproval())
    randoms = [run(f"random_veto_{seed + i}", approver=RandomVeto(rate, seed + i)) for i in range(draws)]
    drawn = [shown(s) for s in randoms]
    approver_figures = shown(with_approver)
    random_rates = [veto_rate(s.approval)[2] for s in randoms]
    section = {
        "approver": (with_approver.approval or {}).get("approver"),
        "decisions_reaching_approval": reached,
        "vetoes": vetoes,
        "failsafe": failures,
        "veto_rate": rate,
        "with": approver_figures,
        "without": shown(without),
        "random_veto": {
            "draws": draws,
            "seeds": [seed + i for i in range(draws)],
            "veto_rates": random_rates,
            "mean": {key: _mean([d[key] for d in drawn]) for key in SHOWN},
        },
    }
    section["beats_random_share"] = _share_beaten(approver_figures.get("sharpe"), [d["sharpe"] for d in drawn])
    section["summary"] = summary(section)
    return section


def _mean(values: list[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _share_beaten(sharpe: float | None, draws: list[Any]) -> float | None:
    known = [d for d in draws if d is not None]
    if sharpe is None or not known:
        return None
    return float(sum(sharpe > d for d in known) / len(known))


def summary(section: dict[str, Any]) -> str:
    """One plain sentence from the numbers, whichever way they fall."""
    with_s, without_s = section["with"].get("sharpe"), section["without"].get("sharpe")
    share, draws = section["beats_random_share"], section["random_veto"]["draws"]
    name = section["approver"] or "the approver"
    if section["decisions_reaching_approval"] == 0:
        return f"No decision reached {name}: the comparison says nothing."
    if with_s is None or without_s is None:
        return f"Sharpe is undefined in a run (no trades or a flat curve): {name} cannot be judged on it."
    better = with_s > without_s
    against = "beats" if better else "does NOT beat"
    random_part = (
        f"and beats {share:.0%} of {draws} random-veto draws at its own veto rate"
        if share is not None
        else "and no random-veto draw has a defined Sharpe"
    )
    return (
        f"{name} {against} trading without it on Sharpe ({with_s:.2f} against {without_s:.2f}), "
        f"{random_part} ({section['veto_rate']:.0%} of {section['decisions_reaching_approval']} decisions vetoed)."
    )
