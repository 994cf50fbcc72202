"""A backtest of a period the service traded with Claude replays Claude's answers from the
ledger: no call, no cost, the same decisions; a context it has no answer for takes the failure
policy and is counted."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from helios_live.approval.claude import ClaudeApprover
from helios_live.approval.cost import Budget
from helios_live.approval.recorded import RecordedApprover
from helios_live.kernel.kernel import Kernel
from helios_live.settings import LlmSettings
from tests.anthropic_support import FakeAnthropic, tool
from tests.unit.live.test_approval_kernel import kernel

KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HALF = {
    "decision": "MODIFY",
    "size_multiplier": 0.5,
    "leverage": 1.0,
    "stop_loss_pct": 0.01,
    "take_profit_pct": 0.02,
    "confidence": 0.7,
    "reasons": ["half size at 1x"],
}


def run(k: Kernel, live: list[Any], minutes: int = 40) -> list[tuple[str, str, bool, str]]:
    async def go() -> None:
        await k.start(connect=False)
        await k.set_auto_trading(True)
        for event in live[:minutes]:
            await k.on_event(event)
        await k.drain()
        await k.close()

    asyncio.run(go())
    items = k.ledger.predictions(limit=1000).items
    # Each run registers its own model, whose version names it and its position keys.
    version = k.model_version or ""
    return [
        (
            p["candle_ts"].isoformat(),
            s["step"],
            s["approved"],
            KEY.sub("<key>", s["reason"].replace(version, "<model>")),
        )
        for p in items
        for s in p["steps"]
    ]


def test_a_recorded_period_replays_without_a_call(tmp_path: Path) -> None:
    with FakeAnthropic(default=tool(HALF)) as server:
        llm = LlmSettings(base_url=server.base_url, deadline_s=2.0)
        claude = ClaudeApprover(llm, "sk-ant-fake", Budget(1.0, 10.0))
        first, live = kernel(tmp_path / "live", ("BTCPERP",), claude, lockstep=True)
        original = run(first, live)
        calls = server.count
    assert calls > 0, "the model leans BUY: entries must have reached Claude"
    recorded = first.ledger.llm_decisions(limit=1000).items
    assert len(recorded) == calls and all(r["source"] == "llm" and r["cost_usd"] > 0 for r in recorded)

    again, live = kernel(
        tmp_path / "replay",
        ("BTCPERP",),
        None,
        lockstep=True,
        llm_approver="recorded",
        llm_recorded_url=first.settings.resolved_database_url,
    )
    replayer = again.approval.approver  # type: ignore[attr-defined]
    assert isinstance(replayer, RecordedApprover)
    replayed_steps = run(again, live)
    assert [(t, s, a, r.replace("by recorded:", "by claude:")) for t, s, a, r in replayed_steps] == original
    assert (replayer.hits, replayer.misses) == (calls, 0)
    replayed = again.ledger.llm_decisions(limit=1000).items
    assert all(r["source"] == "recorded" and r["cost_usd"] == 0 for r in replayed)
    assert [r["answer"] for r in replayed] == [r["answer"] for r in recorded]


def test_a_miss_takes_the_failure_policy_and_is_counted(tmp_path: Path) -> None:
    k, live = kernel(tmp_path, ("BTCPERP",), None, lockstep=True, llm_approver="recorded")
    outcome = run(k, live)
    replayer = k.approval.approver  # type: ignore[attr-defined]
    assert replayer.misses > 0 and replayer.hits == 0
    approvals = [reason for _, step, _, reason in outcome if step == "approval"]
    assert len(approvals) == replayer.misses
    assert all("failsafe (recorded_miss" in reason for reason in approvals)
