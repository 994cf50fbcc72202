"""Trading inside the kernel: an approved signal opens a paper position recorded with its
decision; the emergency stop closes everything; the drawdown hard stop triggers it; LIVE refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helios_core.timeframes import as_datetime
from helios_core.trading.enums import TradingMode
from helios_live.ledger import ModeRecord
from helios_live.trading.desk import ModeError
from tests.live_support import feed, in_process, start_trading, trading_kernel


def test_an_approved_signal_opens_a_paper_position_recorded_with_its_decision(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await start_trading(kernel, live, 40)
        await kernel.close()

    asyncio.run(run())
    ledger = kernel.ledger
    positions = ledger.positions(limit=100).items
    decisions = ledger.risk_decisions(limit=1000).items
    fills = ledger.fills(limit=100).items

    assert positions, "the model leans BUY with confidence: something must have traded"
    position = positions[-1]
    assert position["side"] == "LONG" and position["pair"] == "BTCPERP"
    assert position["stop_loss_price"] < position["entry_price"] < position["take_profit_price"]
    opened = [d for d in decisions if d["approved"] and d["check"] and d["check"]["passed"]]
    assert opened and opened[-1]["vol_source"] in ("GARCH", "EWMA")
    assert opened[-1]["regime"] in ("LOW", "MEDIUM", "HIGH", "EXTREME")
    # later decisions on the same pair are denied by the guard as that while the position is open
    denied = [d for d in decisions if d["check"] and not d["check"]["passed"]]
    assert denied and all(d["check"]["violations"][0].startswith("position_open: BTCPERP") for d in denied)
    assert {f["client_order_id"] for f in fills} >= {position["key"] + "-O"}
    executed = [
        p
        for p in ledger.predictions(limit=1000).items
        if p["steps"][-1]["step"] == "execution" and p["steps"][-1]["approved"]
    ]
    assert len(executed) == len(positions)
    assert executed[-1]["steps"][-1]["reason"].startswith("paper LONG")
    snapshot = ledger.latest_snapshot()
    assert snapshot is not None and snapshot.open_positions == sum(p["status"] == "OPEN" for p in positions)


def test_the_emergency_stop_closes_every_position_and_blocks_entries_until_cleared(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> list[str]:
        await start_trading(kernel, live, 30)
        assert kernel.desk.account.positions
        await kernel.set_emergency_stop(True, "test")
        assert not kernel.desk.account.positions
        await feed(kernel, live[30:40])
        steps = [p["steps"][-1] for p in kernel.ledger.predictions(limit=10).items]
        await kernel.close()
        return [f"{s['step']}:{s['reason']}" for s in steps]

    last_steps = asyncio.run(run())
    positions = kernel.ledger.positions(limit=100).items

    assert positions and all(p["status"] == "CLOSED" for p in positions)
    assert any(p["close_reason"] == "EMERGENCY" for p in positions)
    assert all(s == "gate:emergency stop active" for s in last_steps)


def test_the_drawdown_hard_stop_triggers_the_emergency_stop(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path, trading_capital=10_000.0, risk_max_drawdown=0.01)

    async def run() -> None:
        await start_trading(kernel, live, 30)
        (position,) = kernel.desk.account.positions.values()
        # the market gaps 30% down through the stop: the leveraged long loses more than 1% of equity
        await kernel.prices("BTCPERP", position.entry_price * 0.7, kernel.clock.timestamp() + 1)
        await kernel.drain()
        await kernel.close()

    asyncio.run(run())
    stops = kernel.ledger.events(kind="EMERGENCY_STOP", limit=10).items
    positions = kernel.ledger.positions(limit=100).items

    assert kernel.emergency_stop and stops and "hard stop" in stops[0]["detail"]["reason"]
    assert all(p["status"] == "CLOSED" for p in positions)


def test_a_position_times_out_on_its_own_alarm_between_candles(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path, risk_max_hold_s=90.0)

    async def run() -> None:
        await start_trading(kernel, live, 30)
        await kernel.close()

    asyncio.run(run())
    closed = [p for p in kernel.ledger.positions(limit=100).items if p["close_reason"] == "TIMEOUT"]

    assert closed
    # closed at its deadline to the second, not at the next candle: the alarm woke its pair
    assert all((p["closed_at"] - p["deadline"]).total_seconds() == 0 for p in closed)


def test_an_engine_without_a_venue_refuses_live_and_a_restored_live_mode_blocks_entries_clearly(
    tmp_path: Path,
) -> None:
    kernel, live = trading_kernel(tmp_path, valr_api_key="k" * 16, valr_api_secret="s" * 32)
    at = float(live[0].start)

    async def run() -> TradingMode:
        await kernel.start(connect=False)
        with pytest.raises(ModeError, match="needs a venue"):
            await kernel.set_mode(TradingMode.LIVE, "I_CONFIRM_LIVE_TRADING", "test")
        await kernel.close()
        # A ledger left in LIVE (by a service that had VALR wired in), opened by one that has not.
        kernel.ledger.record_mode(ModeRecord(TradingMode.LIVE, TradingMode.PAPER, "test", as_datetime(at)))
        restarted = in_process(kernel.settings)
        await restarted.start(connect=False)
        await restarted.set_auto_trading(True)
        await feed(restarted, live[:30])
        mode = restarted.mode
        assert "needs a venue" in restarted.halted()
        await restarted.close()
        return mode

    mode_after_restart = asyncio.run(run())

    assert mode_after_restart is TradingMode.LIVE and kernel.ledger.mode() is TradingMode.LIVE
    assert kernel.ledger.positions(limit=10).items == []  # no entry while LIVE cannot trade
    (unavailable,) = kernel.ledger.events(kind="VENUE_UNAVAILABLE", limit=10).items
    assert "needs a venue" in unavailable["detail"]["error"]


@pytest.mark.parametrize(
    ("confirmation", "credentials", "message"),
    [
        (None, True, "confirmation phrase"),
        ("I_CONFIRM_LIVE_TRADING", False, "VALR credentials"),
    ],
)
def test_switching_to_live_needs_the_phrase_and_credentials(
    tmp_path: Path, confirmation: str | None, credentials: bool, message: str
) -> None:
    keys = {"valr_api_key": "k" * 16, "valr_api_secret": "s" * 32} if credentials else {}
    kernel, _ = trading_kernel(tmp_path, **keys)

    async def run() -> None:
        await kernel.start(connect=False)
        try:
            await kernel.set_mode(TradingMode.LIVE, confirmation)
        finally:
            await kernel.close()

    with pytest.raises(Exception, match=message):
        asyncio.run(run())
    assert kernel.ledger.mode() is TradingMode.PAPER
