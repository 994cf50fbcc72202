"""Does the approver add value? The backtest with Tier 4, without it and with random vetoes at
its own rate, side by side in one report; the random veto's draws are deterministic."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from helios_live.approval.prompt import render
from helios_live.approval.random_veto import RandomVeto
from helios_live.backtest.backtester import Market
from helios_live.backtest.run import BacktestResult, run_backtest
from helios_live.models.registry import Registry
from tests.live_support import live_settings, make_bundle
from tests.unit.live.test_approval_context import full
from tests.unit.live.test_backtester import END, START, market  # noqa: F401 -- the module's fixture

DRAWS = 2


def compared(home: Path, market: Market, out: str = "run", **overrides: object) -> BacktestResult:  # noqa: F811
    pairs = tuple(market.base)
    values = {"live_min_confidence": 0.4, "live_warmup_days": 1, "risk_max_hold_s": 1800.0, **overrides}
    settings = live_settings(home, live_pairs=pairs, **values)
    version = Registry(settings.models_root).active() if settings.models_root.exists() else None
    version = version or make_bundle(settings.models_root, lean=0)
    return run_backtest(
        settings, model_version=version, pairs=pairs, start=START, end=END, out_dir=home / out,
        market=market, random_runs=5, compare_approval=DRAWS,
    )  # fmt: skip


def test_the_report_sets_the_approver_beside_no_approver_and_random_vetoes(tmp_path: Path, market: Market) -> None:  # noqa: F811
    result = compared(tmp_path, market, llm_approver="rule_based")
    section = json.loads(result.json.read_text())["approval"]
    assert section["approver"] == "rule_based" and section["decisions_reaching_approval"] > 0
    assert section["veto_rate"] == section["vetoes"] / section["decisions_reaching_approval"]
    assert section["random_veto"]["draws"] == DRAWS and len(section["random_veto"]["veto_rates"]) == DRAWS
    for figures in (section["with"], section["without"], section["random_veto"]["mean"]):
        assert set(figures) == {"trades", "total_return", "sharpe", "max_drawdown", "win_rate"}
    assert section["without"]["trades"] > 0 and section["summary"].startswith("rule_based ")
    assert (tmp_path / "run" / "approval" / "without.sqlite").exists()
    html = result.html.read_text()
    assert "Tier 4: does the approver add value?" in html and section["summary"].split(" (")[0] in html
    again = compared(tmp_path, market, "again", llm_approver="rule_based")
    assert again.json.read_bytes() == result.json.read_bytes()


def test_an_approver_that_rejects_everything_trades_nothing_and_the_report_says_so(
    tmp_path: Path,
    market: Market,  # noqa: F811
) -> None:
    # `recorded` with nothing recorded: every entry is a miss, rejected by the failure policy
    result = compared(tmp_path, market, llm_approver="recorded")
    section = result.report["approval"]
    assert section["with"]["trades"] == 0 and section["veto_rate"] == 1.0
    assert section["failsafe"] == section["vetoes"] == section["decisions_reaching_approval"]
    assert section["random_veto"]["veto_rates"] == [1.0] * DRAWS  # vetoes everything too, at rate 1
    assert section["without"]["trades"] > 0
    assert "Sharpe is undefined" in section["summary"] or "does NOT beat" in section["summary"]


def test_random_vetoes_are_seeded_order_free_and_at_their_rate() -> None:
    keys = [(f"P{i % 7}", 1_700_000_000.0 + 60 * i) for i in range(20_000)]
    veto = RandomVeto(0.3, seed=7)
    draws = {k: veto.vetoes(*k) for k in keys}
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)  # noqa: S311 -- an order, not a secret
    assert {k: RandomVeto(0.3, seed=7).vetoes(*k) for k in shuffled} == draws
    assert abs(sum(draws.values()) / len(keys) - 0.3) < 0.015
    assert {k: RandomVeto(0.3, seed=8).vetoes(*k) for k in keys} != draws
    assert not any(RandomVeto(0.0, 1).vetoes(*k) for k in keys[:500])
    context = full()
    reply = asyncio.run(RandomVeto(1.0, 0).ask(render(context.to_json()), context, context.at))
    assert reply.answer is not None and reply.answer.decision == "REJECT"
