"""Surveillance inside the kernel (run "ledger": the events `helios surveil` writes): a CRITICAL
event on the pair's base blocks entries with the event id as the reason, a HIGH one scales the
size, the verdicts clear when the event ends, and an open position is still managed and closed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from helios_core.decision import Context, Prediction
from helios_core.risk.sizing import Sizing
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_core.surveillance.gate import Restriction, depends_on, restriction
from helios_live.clock import TimeEvent
from helios_live.ledger import Ledger
from helios_live.surveillance.gate import SurveillanceGate
from helios_live.surveillance.rows import event_row
from tests.live_support import feed, start_trading, trading_kernel

SIZING = Sizing(0.1, 0.05, 0.05, 0.05, 0.2, 0.05, 1.0, 0.02, 0.04, 86400.0, True, "")


def event(severity: Severity, asset: str = "BTC", ended: float | None = None, at: float = 0.0) -> SecurityEvent:
    return SecurityEvent(
        f"ev-{severity}-{asset}", "oracle_deviation", "hyperliquid", asset, severity, severity, 80.0, {}, at, at, 1,
        ended=ended,
    )  # fmt: skip


def test_the_gate_step_denies_on_critical_scales_on_high_and_names_the_event() -> None:
    events: list[SecurityEvent] = []
    gate = SurveillanceGate(lambda pair: restriction(events, pair, "USDTZAR"), 0.5)

    def decide(pair: str = "BTCZAR") -> tuple[bool, str, float]:
        context = Context(pair, Prediction("BUY", (0.8, 0.1, 0.1), 0.8, "h"), "v1", 100.0, False, True)
        context.sizing = SIZING
        verdict = gate(context)
        assert context.sizing is not None
        return verdict.approved, verdict.reason, context.sizing.fraction

    assert decide() == (True, "no surveillance event on the pair", 0.05)
    events.append(event(Severity.HIGH, "USDTZAR"))
    approved, reason, fraction = decide()
    assert approved and "ev-HIGH-USDTZAR" in reason and fraction == 0.025
    events.append(event(Severity.CRITICAL, "BTC"))
    approved, reason, _ = decide()
    assert not approved and "ev-CRITICAL-BTC" in reason
    assert decide("ETHZAR")[0] and decide("ETHZAR")[2] == 0.025  # BTC is not ETHZAR's; USDTZAR is
    events[:] = [replace(e, ended=1.0) for e in events]
    assert decide() == (True, "no surveillance event on the pair", 0.05)
    assert depends_on("BTCPERP", "USDTZAR") == {"BTCPERP", "BTC"}
    assert restriction([], "BTCZAR", "USDTZAR") == Restriction()


def test_a_critical_event_in_the_ledger_blocks_entries_until_it_ends_and_exits_still_run(tmp_path: Path) -> None:
    # Without Tier 5 allocation, whose emergency rebalance would close the position on the
    # CRITICAL event itself (tests/unit/live/test_allocation_kernel.py): here the exit must be the
    # position's own, through the blocked entries.
    kernel, live = trading_kernel(tmp_path, surveillance_run="ledger", risk_max_hold_s=300.0, allocation_enabled=False)
    ledger = Ledger(kernel.settings.resolved_database_url)

    async def run() -> tuple[int, int]:
        await start_trading(kernel, live, 20)
        assert kernel.desk.account.positions, "the model leans BUY: a position is open"
        now = kernel.clock.timestamp()
        ledger.record_surveillance([event_row(event(Severity.CRITICAL, "BTC", at=now))])
        await kernel._follow_events(TimeEvent("surveil-follow", 0))
        closed_before = len(ledger.closed_positions())
        await feed(kernel, live[20:40])  # 20 minutes: the open position times out and closes
        closed_during = len(ledger.closed_positions()) - closed_before
        ledger.record_surveillance([event_row(event(Severity.CRITICAL, "BTC", ended=now + 1200, at=now))])
        await kernel._follow_events(TimeEvent("surveil-follow", 0))
        await feed(kernel, live[40:60])
        await kernel.close()
        return closed_during, len(ledger.closed_positions())

    closed_during, _ = asyncio.run(run())
    assert closed_during >= 1  # exits are never blocked
    steps = [
        (p["candle_ts"].timestamp(), s)
        for p in ledger.predictions(limit=1000).items
        for s in p["steps"]
        if s["step"] == "surveillance"
    ]
    denied = [s for _, s in steps if not s["approved"]]
    assert denied and all("ev-CRITICAL-BTC" in s["reason"] for s in denied)
    last = max(steps, key=lambda item: item[0])[1]
    assert last["approved"]  # cleared once the event ended
