"""Tier 4 inside the kernel: the merged trade still meets Tier 5, the audit reaches the ledger,
and a slow answer for one pair holds up neither another pair's decision nor the pair's own
stops."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from helios_core.market import Bucket, MarketSummary
from helios_live.approval.answer import Answer
from helios_live.approval.approver import Approver, Prompt, Reply
from helios_live.approval.context import MarketContext
from helios_live.backtest.replay import ReplayDataClient
from helios_live.clock import ExchangeClock
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, buckets
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.models.registry import Registry
from tests.conftest import sample
from tests.live_support import BTC, HISTORY, live_settings, make_bundle


class Scripted:
    """Answers MODIFY asking for far more than any proposal (which the merge clamps), after
    waiting on `gate` for the pairs named in `slow`."""

    name = "scripted"
    model_id = "claude-sonnet-4-5"
    remote = True  # as Claude is: the kernel runs its decisions beside the pair's worker

    def __init__(self, slow: tuple[str, ...] = (), gate: asyncio.Event | None = None, stop: float = 0.5) -> None:
        self.slow, self.gate, self.stop = slow, gate, stop
        self.asked: list[tuple[str, float]] = []

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        self.asked.append((context.pair, time.perf_counter()))
        if context.pair in self.slow and self.gate is not None:
            await self.gate.wait()
        answer = Answer(
            decision="MODIFY",
            size_multiplier=1.0,
            leverage=20.0,
            stop_loss_pct=self.stop,
            take_profit_pct=1.0,
            confidence=0.9,
            reasons=["asks for everything"],
        )
        return Reply(answer, model_id=self.model_id, request_id="req_test", input_tokens=10, cost_usd=0.0001)


def kernel(
    home: Path, pairs: tuple[str, ...], approver: Approver | None, *, lockstep: bool, **overrides: Any
) -> tuple[Kernel, list[Bucket]]:
    """BTC-PERP's candles under each pair's name: 20 hours in the lake, then 2 hours to replay."""
    candles = sample(BTC).head(HISTORY + 120)
    lake = Lake(home / "lake")
    history = candles.iloc[:HISTORY]
    for pair in pairs:
        for day, frame in history.groupby(history["ts"].dt.date):
            lake.write("candles", pair, "1m", day, frame.reset_index(drop=True), {})
    settings = live_settings(home, live_pairs=pairs, **overrides)
    make_bundle(settings.models_root, lean=0)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    clock = ExchangeClock()
    client = ReplayDataClient(Recorded(), clock, start=0.0, from_trades=False)
    k = Kernel(
        settings, ledger, Registry(settings.models_root), clock, client, lake=lake, approver=approver, lockstep=lockstep
    )
    live = candles.iloc[HISTORY:].reset_index(drop=True)
    per_pair = [buckets(pair, live) for pair in pairs]
    return k, [b for minute in zip(*per_pair, strict=True) for b in minute]


def approval_steps(k: Kernel) -> list[dict[str, Any]]:
    return [s for p in k.ledger.predictions(limit=1000).items for s in p["steps"] if s["step"] == "approval"]


def test_the_merged_trade_meets_tier_5_and_is_never_riskier(tmp_path: Path) -> None:
    approver = Scripted()
    k, live = kernel(tmp_path, ("BTCPERP",), approver, lockstep=True)

    async def run() -> None:
        await k.start(connect=False)
        await k.set_auto_trading(True)
        for event in live[:40]:
            await k.on_event(event)
        await k.drain()
        await k.close()

    asyncio.run(run())
    decisions = k.ledger.risk_decisions(limit=1000).items
    positions = k.ledger.positions(limit=100).items
    steps = approval_steps(k)
    assert positions and steps, "the model leans BUY: decisions must reach Tier 4 and trade"
    assert all(s["approved"] and "leverage 20 above the proposal's" in s["reason"] for s in steps)
    proposed = [d for d in decisions if d["approved"]]
    for position in positions:  # what the approver asked for (20x, a 50% stop) never reached a trade
        assert position["leverage"] <= max(d["leverage"] for d in proposed)
        stop = 1 - position["stop_loss_price"] / position["entry_price"]
        assert stop <= max(d["stop_loss_pct"] for d in proposed) + 1e-9
    # Tier 5 ran after every approval: later entries on the held pair are its denials
    denied = [p["steps"][-1] for p in k.ledger.predictions(limit=1000).items if p["steps"][-1]["step"] == "portfolio"]
    assert denied and all(s["reason"].startswith("position_open") for s in denied)
    assert k.approval.verdicts["APPROVE"] + k.approval.verdicts["MODIFY"] == len(steps)  # type: ignore[attr-defined]


def test_a_slow_answer_delays_no_other_pair_and_no_stop(tmp_path: Path) -> None:
    gate = asyncio.Event()
    # A 1% stop: a price through it is within the price guard's 3% jump, so it is believed at once.
    approver = Scripted(slow=(), gate=gate, stop=0.01)
    k, live = kernel(tmp_path, ("BTCPERP", "BTCZAR"), approver, lockstep=False)

    async def run() -> dict[str, Any]:
        gate.set()
        await k.start(connect=False)
        await k.set_auto_trading(True)
        minute = 0
        while not k.desk.account.positions:
            for event in live[2 * minute : 2 * minute + 2]:
                await k.on_event(event)
            await k.drain()
            minute += 1
            assert minute < 60, "no position opened"
        # Whichever pair opened first (the other's entry is then denied by the correlation limit)
        # is the one whose approver hangs from here until released.
        position = next(iter(k.desk.account.positions.values()))
        held = position.pair
        other = next(p for p in k.pairs if p != held)
        gate.clear()
        approver.slow = (held,)
        asked = len(approver.asked)
        for event in live[2 * minute : 2 * minute + 2]:
            await k.on_event(event)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if len(approver.asked) >= asked + 2:
                break
        pairs_asked = {pair for pair, _ in approver.asked[asked:]}
        other_done = False
        for _ in range(200):  # the other pair's decision lands while the held pair's waits
            await asyncio.sleep(0.005)
            other_done = k.queues[other].empty() and not any(t.get_name() == f"decide-{other}" for t in k._decisions)
            if other_done:
                break
        waiting = any(t.get_name() == f"decide-{held}" for t in k._decisions)
        # a price through the stop, on the waiting pair: the position closes now, not after the answer
        stop = position.stop_loss_price
        now = k.clock.timestamp()
        await k.on_event(MarketSummary(held, now + 1, stop * 0.995, None, None))
        for _ in range(200):
            await asyncio.sleep(0.005)
            if position.key not in k.desk.account.positions:
                break
        closed_while_waiting = position.key not in k.desk.account.positions and any(
            t.get_name() == f"decide-{held}" for t in k._decisions
        )
        gate.set()
        await k.drain()
        await k.close()
        return {"pairs": pairs_asked, "other": other_done, "waiting": waiting, "closed": closed_while_waiting}

    seen = asyncio.run(run())
    assert seen["pairs"] == {"BTCPERP", "BTCZAR"}
    assert seen["waiting"], "the held pair's decision should be waiting on its approver"
    assert seen["other"], "the other pair's decision must not wait on the held pair's approver"
    assert seen["closed"], "the stop must close the position while the approver still thinks"
