"""Tier 5 allocation inside the kernel (paper trading on real BTC-PERP minutes): the targets in
the ledger cap entries, the daily check trims a drift above the threshold and leaves one below
it, an emergency on a risk event only reduces, every rebalance is a `rebalancing_events` row
with REDUCE orders, and a restart rebuilds the trimmed position and the cash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helios_core.allocation.targets import Targets
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_core.trading.enums import CloseReason
from helios_live.clock import TimeEvent
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.surveillance.rows import event_row
from tests.live_support import feed, start_trading, trading_kernel

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def targets(weight: float) -> Targets:
    # BTCPERP is the kernel's only pair; the rest of the weight sits in a pair it does not trade.
    return Targets({"BTCPERP": weight, "ETHPERP": 1.0 - weight}, NOW, NOW, "test")


async def with_targets(kernel: Kernel, ledger: Ledger, weight: float) -> None:
    ledger.record_targets(targets(weight), "test")
    await kernel.allocation.refresh()


def weight_of(kernel: Kernel) -> float:
    return kernel.allocation.status()["weights"].get("BTCPERP", 0.0)


def test_targets_cap_entries_and_the_decision_says_so(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path, allocation_band=0.0)
    ledger = Ledger(kernel.settings.resolved_database_url)

    async def run() -> None:
        await kernel.start(connect=False)
        await with_targets(kernel, ledger, 0.01)
        await kernel.set_auto_trading(True)
        await feed(kernel, live[:40])
        await kernel.close()

    asyncio.run(run())
    steps = [s for p in ledger.predictions(limit=1000).items for s in p["steps"] if s["step"] == "allocation"]
    assert steps, "every entry that reached Tier 5 met the allocation step"
    assert any("scaled" in s["reason"] and "target 1.0%" in s["reason"] for s in steps)
    for p in ledger.open_positions() + ledger.closed_positions():
        exposure = p.quantity * p.entry_price + p.entry_fee  # trims aside, at entry
        assert exposure / kernel.settings.trading.capital <= 0.011  # target + band 0, fees and moves aside


def trimmed_run(tmp_path: Path, drift_weight: float) -> tuple[Kernel, Ledger, dict[str, Any]]:
    kernel, live = trading_kernel(tmp_path, risk_max_hold_s=86_400.0)
    ledger = Ledger(kernel.settings.resolved_database_url)
    seen: dict[str, Any] = {}

    async def run() -> None:
        await start_trading(kernel, live, 20)
        assert kernel.desk.account.positions, "the model leans BUY: a position is open"
        held = weight_of(kernel)
        seen["held"] = held
        await with_targets(kernel, ledger, max(0.0, held - drift_weight))
        seen["rebalance"] = await kernel.allocation.check(kernel.clock.timestamp())
        seen["after"] = weight_of(kernel)
        seen["cash"] = kernel.desk.account.cash
        seen["positions"] = dict(kernel.desk.account.positions)
        await kernel.close()

    asyncio.run(run())
    return kernel, ledger, seen


def test_a_drift_below_five_percent_leaves_the_position_alone(tmp_path: Path) -> None:
    kernel, ledger, seen = trimmed_run(tmp_path, 0.04)
    assert datetime.fromtimestamp(kernel.clock.timestamp(), UTC).weekday() != 0  # a daily check, not Monday's
    assert seen["rebalance"] is None
    assert seen["after"] == pytest.approx(seen["held"])
    assert ledger.rebalances().items == []


def test_a_drift_above_five_percent_trims_to_target_through_the_chain_and_survives_a_restart(tmp_path: Path) -> None:
    kernel, ledger, seen = trimmed_run(tmp_path, 0.06)
    rebalance = seen["rebalance"]
    assert rebalance is not None and rebalance.reason in ("DAILY", "WEEKLY")
    assert seen["after"] == pytest.approx(seen["held"] - 0.06, abs=1e-3)  # at the fill's price, not the mark's
    (row,) = ledger.rebalances().items
    assert row["weights_before"]["BTCPERP"] == pytest.approx(seen["held"], abs=1e-5)
    assert row["target_weights"]["BTCPERP"] == pytest.approx(seen["held"] - 0.06, abs=1e-5)
    (order,) = row["orders"]
    assert order["status"] == "FILLED" and not order["close"]
    orders = ledger.orders(limit=100).items
    assert [o["purpose"] for o in orders if o["client_order_id"] == order["client_order_id"]] == ["REDUCE"]
    (stored,) = ledger.open_positions()
    (held,) = seen["positions"].values()
    assert stored.quantity == pytest.approx(held.quantity) and stored.reduced_pnl == pytest.approx(held.reduced_pnl)
    assert ledger.events(kind="REBALANCE").items

    async def restart() -> float:
        again = Kernel(kernel.settings, ledger, kernel.registry, kernel.clock, kernel.client, lake=kernel.lake)
        await again.start(connect=False)
        cash = again.desk.account.cash
        await again.close()
        return cash

    assert asyncio.run(restart()) == pytest.approx(seen["cash"])


def test_an_emergency_on_a_risk_event_halves_then_closes_and_never_buys(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path, risk_max_hold_s=86_400.0)
    ledger = Ledger(kernel.settings.resolved_database_url)
    out: dict[str, float] = {}

    def event(severity: Severity) -> SecurityEvent:
        at = kernel.clock.timestamp()
        return SecurityEvent(f"ev-{severity}", "oracle_deviation", "hyperliquid", "BTC", severity, severity, 80.0, {},
                             at, at, 1)  # fmt: skip

    async def run() -> None:
        await start_trading(kernel, live, 20)
        out["held"] = weight_of(kernel)
        await kernel._security_event(event(Severity.MEDIUM))  # below the emergency level: nothing
        out["medium"] = weight_of(kernel)
        await kernel._security_event(event(Severity.HIGH))
        out["high"] = weight_of(kernel)
        await kernel._security_event(event(Severity.HIGH))  # the same event seen again: not halved again
        out["high_again"] = weight_of(kernel)
        await kernel._security_event(event(Severity.CRITICAL))
        out["critical"] = weight_of(kernel)
        await kernel.close()

    asyncio.run(run())
    assert out["held"] > 0 and out["medium"] == pytest.approx(out["held"])
    assert out["high"] == pytest.approx(out["held"] * 0.5, rel=0.02)
    assert out["high_again"] == pytest.approx(out["high"])
    assert out["critical"] == 0.0
    reasons = [r["reason"] for r in ledger.rebalances().items]
    assert reasons == ["EMERGENCY", "EMERGENCY"]
    (closed,) = ledger.closed_positions()
    assert closed.close_reason is CloseReason.REBALANCE
    assert closed.reduced_pnl != 0.0  # the HIGH trim realised its part (fees at least)
    assert ledger.account()["realised"] == pytest.approx(closed.realised_pnl)  # trims included, once


def test_an_event_helios_surveil_wrote_to_the_ledger_trims_as_one_found_in_process(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path, surveillance_run="ledger", risk_max_hold_s=86_400.0)
    ledger = Ledger(kernel.settings.resolved_database_url)
    out: dict[str, float] = {}

    async def run() -> None:
        await start_trading(kernel, live, 20)
        out["held"] = weight_of(kernel)
        at = kernel.clock.timestamp()
        high = SecurityEvent("ev-high", "oracle_deviation", "hyperliquid", "BTC", Severity.HIGH, Severity.HIGH, 80.0,
                             {}, at, at, 1)  # fmt: skip
        ledger.record_surveillance([event_row(high)])
        for _ in range(3):  # followed every 15 s while it lasts: one emergency
            await kernel._follow_events(TimeEvent("surveil-follow", 0))
        out["after"] = weight_of(kernel)
        await kernel.close()

    asyncio.run(run())
    assert out["held"] > 0 and out["after"] == pytest.approx(out["held"] * 0.5, rel=0.02)
    assert [r["reason"] for r in ledger.rebalances().items] == ["EMERGENCY"]
