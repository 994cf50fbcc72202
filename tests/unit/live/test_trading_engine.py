"""Trading inside the engine: an approved signal opens a paper position recorded with its
decision; the emergency stop closes everything; the drawdown hard stop triggers it; LIVE refuses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helios_live.clock import ExchangeClock
from helios_live.data.lake import Lake
from helios_live.engine.engine import Engine
from helios_live.ledger import Ledger
from helios_live.models.registry import Registry
from tests.conftest import sample
from tests.live_support import candle_messages, live_settings, make_bundle

BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
HISTORY = 1200  # 20 hours in the lake: 240 five-minute returns for the volatility model


def _engine(home: Path, **overrides: Any) -> tuple[Engine, pd.DataFrame]:
    candles = sample(BTC).head(HISTORY + 120)
    lake = Lake(home / "lake")
    history = candles.iloc[:HISTORY]
    for day, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", day, frame.reset_index(drop=True), {})
    settings = live_settings(home, **overrides)
    make_bundle(settings.models_root, lean=0)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    engine = Engine(settings, ledger, Registry(settings.models_root), ExchangeClock(), lake=lake, tick_s=0.01)
    return engine, candles.iloc[HISTORY:].reset_index(drop=True)


async def _until(condition: Any, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 -- polling state owned by other tasks
            await asyncio.sleep(0.01)


async def _trade(engine: Engine, live: pd.DataFrame, minutes: int) -> None:
    """Start, catch up from the lake, fit the volatility model, enable trading, replay `minutes`."""
    messages = candle_messages("BTCPERP", live)
    await engine.start(connect=False)
    await engine.set_auto_trading(True)
    for raw in messages[:3]:
        await engine.on_message(raw, time.perf_counter())
    await engine.drain()
    await _until(lambda: engine.desk.trader.vol["BTCPERP"].model is not None)
    for raw in messages[3:minutes]:
        await engine.on_message(raw, time.perf_counter())
        await engine.drain()


def test_an_approved_signal_opens_a_paper_position_recorded_with_its_decision(tmp_path: Path) -> None:
    engine, live = _engine(tmp_path)

    async def run() -> None:
        await _trade(engine, live, 40)
        await engine.close()

    asyncio.run(run())
    ledger = engine.ledger
    positions = ledger.positions(limit=100).items
    decisions = ledger.risk_decisions(limit=1000).items
    fills = ledger.fills(limit=100).items

    assert positions, "the model leans BUY with confidence: something must have traded"
    position = positions[-1]
    assert position["side"] == "LONG" and position["pair"] == "BTCPERP"
    assert position["stop_loss_price"] < position["entry_price"] < position["take_profit_price"]
    opened = [d for d in decisions if d["approved"] and d["check"] and d["check"]["passed"]]
    assert (
        opened
        and opened[-1]["vol_source"] in ("GARCH", "EWMA")
        and opened[-1]["regime"]
        in (
            "LOW",
            "MEDIUM",
            "HIGH",
            "EXTREME",
        )
    )
    # later decisions on the same pair are denied by the guard while the position is open
    denied = [d for d in decisions if d["check"] and not d["check"]["passed"]]
    assert denied and all("max_correlation" in " ".join(d["check"]["violations"]) for d in denied)
    assert {f["client_order_id"] for f in fills} >= {position["key"] + "-O"}
    executed = [
        p
        for p in ledger.predictions(limit=1000).items
        if p["steps"][-1]["step"] == "execution" and p["steps"][-1]["approved"]
    ]
    assert len(executed) == len(positions)
    snapshot = ledger.latest_snapshot()
    assert snapshot is not None and snapshot.open_positions == sum(p["status"] == "OPEN" for p in positions)


def test_the_emergency_stop_closes_every_position_and_blocks_entries_until_cleared(tmp_path: Path) -> None:
    engine, live = _engine(tmp_path)

    async def run() -> list[str]:
        await _trade(engine, live, 30)
        assert engine.desk.trader.account.positions
        await engine.set_emergency_stop(True, "test")
        assert not engine.desk.trader.account.positions
        for raw in candle_messages("BTCPERP", live)[30:40]:
            await engine.on_message(raw, time.perf_counter())
            await engine.drain()
        steps = [p["steps"][-1] for p in engine.ledger.predictions(limit=10).items]
        await engine.close()
        return [f"{s['step']}:{s['reason']}" for s in steps]

    last_steps = asyncio.run(run())
    positions = engine.ledger.positions(limit=100).items

    assert positions and all(p["status"] == "CLOSED" for p in positions)
    assert any(p["close_reason"] == "EMERGENCY" for p in positions)
    assert all(s == "gate:emergency stop active" for s in last_steps)


def test_the_drawdown_hard_stop_triggers_the_emergency_stop(tmp_path: Path) -> None:
    engine, live = _engine(tmp_path, trading_capital=10_000.0, risk_max_drawdown=0.01)

    async def run() -> None:
        await _trade(engine, live, 30)
        (position,) = engine.desk.trader.account.positions.values()
        # the market gaps 30% down through the stop: the leveraged long loses more than 1% of equity
        await engine.desk.on_price("BTCPERP", position.entry_price * 0.7, engine.clock.now() + 1, None)
        await engine.drain()
        await engine.close()

    asyncio.run(run())
    stops = engine.ledger.events(kind="EMERGENCY_STOP", limit=10).items
    positions = engine.ledger.positions(limit=100).items

    assert engine.emergency_stop and stops and "hard stop" in stops[0]["detail"]["reason"]
    assert all(p["status"] == "CLOSED" for p in positions)


def test_in_live_mode_execution_refuses_with_a_clear_message_and_the_mode_survives_a_restart(
    tmp_path: Path,
) -> None:
    engine, live = _engine(tmp_path, valr_api_key="k" * 16, valr_api_secret="s" * 32)
    messages = candle_messages("BTCPERP", live)

    async def run() -> tuple[list[dict[str, Any]], str]:
        await engine.start(connect=False)
        switched = await engine.set_mode("LIVE", "I_CONFIRM_LIVE_TRADING", "test")
        await engine.set_auto_trading(True)
        for raw in messages[:3]:
            await engine.on_message(raw, time.perf_counter())
        await engine.drain()
        await _until(lambda: engine.desk.trader.vol["BTCPERP"].model is not None)
        for raw in messages[3:30]:
            await engine.on_message(raw, time.perf_counter())
            await engine.drain()
        await engine.close()
        restarted = Engine(engine.settings, engine.ledger, engine.registry, ExchangeClock(), tick_s=0.01)
        await restarted.start(connect=False)
        mode = restarted.mode
        await restarted.close()
        assert switched["mode"] == "LIVE"
        return [p["steps"][-1] for p in engine.ledger.predictions(limit=100).items], mode

    last_steps, mode_after_restart = asyncio.run(run())

    assert mode_after_restart == "LIVE" and engine.ledger.mode() == "LIVE"
    refused = [s for s in last_steps if s["step"] == "execution"]
    assert refused and all(not s["approved"] and "LIVE order placement" in s["reason"] for s in refused)
    assert engine.ledger.positions(limit=10).items == []
    assert engine.ledger.events(kind="MODE", limit=10).items[0]["detail"]["previous"] == "PAPER"


@pytest.mark.parametrize(
    ("confirmation", "credentials", "message"),
    [
        (None, True, "confirmation phrase"),
        ("I_CONFIRM_LIVE_TRADING", False, "exchange credentials"),
    ],
)
def test_switching_to_live_needs_the_phrase_and_credentials(
    tmp_path: Path, confirmation: str | None, credentials: bool, message: str
) -> None:
    keys = {"valr_api_key": "k" * 16, "valr_api_secret": "s" * 32} if credentials else {}
    engine, _ = _engine(tmp_path, **keys)

    async def run() -> None:
        await engine.start(connect=False)
        try:
            await engine.set_mode("LIVE", confirmation)
        finally:
            await engine.close()

    with pytest.raises(Exception, match=message):
        asyncio.run(run())
    assert engine.ledger.mode() == "PAPER"
