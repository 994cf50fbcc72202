"""The per-tier switches: what each does to the chain, which can never be switched off, that a
switch is recorded and survives a restart, and `PUT /api/orchestrator/system/tiers/{id}`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helios_live.api.app import create_app
from helios_live.clock import TimeEvent
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.tiers import TierError
from tests.live_support import in_process, live_settings, make_bundle, start_trading, trading_kernel

TOKEN = "Kq3vZ9pW7xR2mT8yL4nB-api"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def last_steps(kernel: Kernel) -> list[dict[str, object]]:
    return [p["steps"][-1] for p in kernel.ledger.predictions(limit=1000).items]


def test_tier2_off_denies_every_entry_at_the_signal_and_predictions_go_on(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await kernel.set_tier("tier2", False, by="ops")
        await start_trading(kernel, live, 40)
        await kernel.close()

    asyncio.run(run())
    assert not kernel.ledger.positions(limit=10).items
    ended = last_steps(kernel)
    assert ended and all(s["step"] == "signal" and not s["approved"] for s in ended)
    assert all("tier2 (Neural network) is switched off" in str(s["reason"]) for s in ended)
    [event] = kernel.ledger.events(kind="TIER_SWITCHED").items
    assert event["detail"] == {"tier": "tier2", "enabled": False, "by": "ops"}


@pytest.mark.parametrize(("policy", "trades"), [("reject", False), ("neural_only", True)])
def test_tier4_off_is_the_failure_policy_and_nothing_is_asked(tmp_path: Path, policy: str, trades: bool) -> None:
    kernel, live = trading_kernel(tmp_path, llm_approver="rule_based", llm_failure_policy=policy)
    asked: list[object] = []
    approver = kernel.approval.approver  # type: ignore[attr-defined]
    real = approver.ask

    async def ask(*args: object) -> object:
        asked.append(args)
        return await real(*args)

    approver.ask = ask

    async def run() -> None:
        await kernel.set_tier("tier4", False)
        await start_trading(kernel, live, 40)
        await kernel.close()

    asyncio.run(run())
    assert not asked
    assert bool(kernel.ledger.positions(limit=10).items) is trades
    failures = {d["failure"] for d in kernel.ledger.llm_decisions(limit=100).items}
    assert failures == {"switched_off: Tier 4 is switched off by the operator"}


def test_the_data_and_sizing_tiers_cannot_be_switched_off_and_a_switch_survives_a_restart(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)
    make_bundle(settings.models_root)
    kernel = in_process(settings)

    async def switch() -> None:
        for tier in ("tier1", "tier3"):
            with pytest.raises(TierError, match="cannot be switched off"):
                await kernel.set_tier(tier, False)
        with pytest.raises(TierError, match="unknown tier"):
            await kernel.set_tier("tier6", False)
        await kernel.set_tier("tier5", False)
        await kernel.set_tier("tier4", False)
        await kernel.set_tier("tier4", True)
        await kernel.start(connect=False)
        await kernel.close()

    asyncio.run(switch())
    again = in_process(settings)

    async def restart() -> None:
        await again.start(connect=False)
        await again.close()

    asyncio.run(restart())
    assert again.tiers.off == {"tier5"}  # the latest switch of each tier, from the ledger
    assert [e["detail"]["tier"] for e in kernel.ledger.events(kind="TIER_SWITCHED").items] == [
        "tier4",
        "tier4",
        "tier5",
    ]


def test_the_tiers_over_rest(tmp_path: Path) -> None:
    settings = live_settings(tmp_path, api_token=TOKEN, live_ws_url="ws://127.0.0.1:9/ws/trade")
    make_bundle(settings.models_root)
    with TestClient(create_app(settings)) as client:
        path = "/api/orchestrator/system/tiers"
        refused = client.put(f"{path}/tier4", json={"enabled": False})
        off = client.put(f"{path}/tier4", json={"enabled": False}, headers=AUTH)
        unsafe = client.put(f"{path}/tier3", json={"enabled": False}, headers=AUTH)
        unknown = client.put(f"{path}/tier9", json={"enabled": False}, headers=AUTH)
        malformed = client.put(f"{path}/tier4", json={"enabled": "maybe", "x": 1}, headers=AUTH)
        state = {t["id"]: t for t in client.get(path, headers=AUTH).json()}
        status = client.get("/api/autonomous-engine/status", headers=AUTH).json()

    assert refused.status_code == 401
    assert off.status_code == 200 and not {t["id"]: t for t in off.json()}["tier4"]["enabled"]
    assert unsafe.status_code == 409 and "cannot be switched off" in unsafe.json()["detail"]
    assert unknown.status_code == 404 and "tier9" in unknown.json()["detail"]
    assert malformed.status_code == 422
    assert not state["tier4"]["enabled"] and state["tier5"]["enabled"] and not state["tier1"]["switchable"]
    assert "failure policy" in state["tier4"]["when_off"]
    assert status["tiers_off"] == ["tier4"]
    [event] = client.app.state.ledger.events(kind="TIER_SWITCHED").items  # type: ignore[attr-defined]
    assert event["detail"] == {"tier": "tier4", "enabled": False, "by": "operator-token"}


def test_tier5_off_skips_the_allocation_and_keeps_the_limits(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await kernel.set_tier("tier5", False)
        await start_trading(kernel, live, 40)
        await kernel.close()

    asyncio.run(run())
    steps = [{s["step"]: s for s in p["steps"]} for p in kernel.ledger.predictions(limit=1000).items]
    allocation = [s["allocation"] for s in steps if "allocation" in s]
    assert allocation and all(str(a["reason"]).startswith("skipped: tier5 (Portfolio manager)") for a in allocation)
    # the guard still runs: with a position open, later entries are denied by it
    assert any(s.get("portfolio", {}).get("reason", "").startswith("position_open") for s in steps)


def test_tier5_off_stops_the_daily_rebalance_too(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)
    make_bundle(settings.models_root)
    kernel = in_process(settings)
    checked: list[float] = []

    async def check(now: float) -> None:
        checked.append(now)

    kernel.allocation.check = check  # type: ignore[method-assign]

    async def run() -> None:
        await kernel._allocation_check(TimeEvent("allocation-check", 1_000_000_000))
        await kernel.set_tier("tier5", False)
        await kernel._allocation_check(TimeEvent("allocation-check", 2_000_000_000))

    asyncio.run(run())
    assert checked == [1.0]
