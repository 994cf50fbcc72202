"""The proof that a backtest is the live engine: one recorded trade stream through the live
service (the VALR simulator on loopback, real sockets, the wire format, the exchange-time clock)
and through the kernel on the replay client under the TestClock, with the same paper execution,
gives the same predictions, verdicts, sizing, checks, orders, fills and positions, row for row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from helios_live.backtest.runner import replay
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, epoch_seconds
from helios_live.kernel.build import build_kernel
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator
from tests.conftest import sample
from tests.live_support import live_settings, make_bundle

pytestmark = pytest.mark.integration
START = pd.Timestamp("2019-10-12T06:00:00Z")
HOURS = 6
# Every column but the row ids and the measured latency; a prediction by its candle.
COMPARED = {
    "predictions": "SELECT pair, candle_ts, decided_at, model_version, feature_set_version, feature_hash, prediction,"
    " p_buy, p_sell, p_hold, confidence, entry_price, outcome_due, actual_outcome, outcome_return, correct"
    " FROM predictions ORDER BY id",
    "decision_steps": "SELECT p.candle_ts, s.position, s.step, s.approved, s.reason FROM decision_steps s"
    " JOIN predictions p ON p.id = s.prediction_id ORDER BY s.id",
    "risk_decisions": "SELECT p.candle_ts, r.* FROM risk_decisions r JOIN predictions p ON p.id = r.prediction_id"
    " ORDER BY r.id",
    "portfolio_checks": "SELECT p.candle_ts, c.passed, c.violations, c.metrics, c.created_at FROM portfolio_checks c"
    " JOIN predictions p ON p.id = c.prediction_id ORDER BY c.id",
    "orders": "SELECT client_order_id, position_key, pair, side, purpose, mode, quantity, status, reason, created_at"
    " FROM orders ORDER BY id",
    "fills": "SELECT client_order_id, price, quantity, fee, liquidity, source, levels, filled_at FROM fills"
    " ORDER BY id",
    "positions": "SELECT p.key, d.candle_ts, p.pair, p.side, p.status, p.quantity, p.entry_price, p.margin, p.leverage,"
    " p.stop_loss_price, p.take_profit_price, p.opened_at, p.deadline, p.entry_fee, p.exit_price, p.closed_at,"
    " p.close_reason, p.exit_fee, p.realised_pnl FROM positions p LEFT JOIN predictions d ON d.id = p.prediction_id"
    " ORDER BY p.id",
}


def _rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = {table: [tuple(r) for r in connection.execute(text(query))] for table, query in COMPARED.items()}
    engine.dispose()
    return rows


def _without_ids(rows: list[tuple[Any, ...]], table: str) -> list[tuple[Any, ...]]:
    if table != "risk_decisions":
        return rows
    return [(r[0], *r[3:]) for r in rows]  # r.* carries its own id and prediction id


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 -- polling state owned by other tasks
            await asyncio.sleep(0.02)


async def _through_the_live_service(settings: HeliosSettings, recorded: Recorded) -> None:
    simulator = ExchangeSimulator(recorded, speed=20_000.0, start=START.to_pydatetime())
    simulator.pause()  # the replay starts once the service is subscribed and trading
    async with simulator:
        service = settings.replace(live_ws_url=simulator.ws_url, valr_base_url=simulator.rest_url)
        ledger = Ledger(service.resolved_database_url)
        ledger.migrate()
        kernel = build_kernel(service, ledger)
        await kernel.start()
        await _until(lambda: kernel.client.accepted["SUBSCRIBED"] == 1)
        await kernel.set_auto_trading(True)
        simulator.resume()
        await simulator.finished.wait()
        sent = await simulator.sent_out()  # every message of the recording is on its way
        market = ("NEW_TRADE", "MARKET_SUMMARY_UPDATE")
        await _until(lambda: sum(kernel.client.accepted[k] for k in market) == sent)
        await kernel.drain()
        await kernel.close()
        ledger.close()


def test_a_trade_stream_through_the_sockets_and_through_the_kernel_gives_the_same_ledger(tmp_path: Path) -> None:
    candles, trades = sample("XRP-ETH_1m_2019-10.parquet"), sample("XRP-ETH_trades_2019-10.parquet")
    home = tmp_path / "helios"
    lake = Lake(home / "lake")
    history = candles.loc[candles["ts"] < START]  # warm-up and the volatility model's returns
    for day, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "XRPETH", "1m", day, frame.reset_index(drop=True), {})
    window = trades.loc[(trades["ts"] >= START) & (trades["ts"] < START + pd.Timedelta(hours=HOURS))]
    recorded = Recorded(trades={"XRPETH": window.reset_index(drop=True)})
    version = make_bundle(home / "models", lean=0)  # sure of BUY: decisions that pass the limits trade

    def settings(name: str) -> HeliosSettings:
        return live_settings(
            home,
            live_pairs=("XRPETH",),
            live_candles="trades",
            database_url=f"sqlite:///{tmp_path / name}.db",
            risk_max_hold_s=1200.0,  # twenty minutes: positions open, time out and open again
            trading_capital=10_000.0,
        )

    asyncio.run(_through_the_live_service(settings("live"), recorded))
    summary = asyncio.run(
        replay(settings("replay"), recorded, start=epoch_seconds(START), model_version=version, lake=lake)
    )

    live, kernel = _rows(tmp_path / "live.db"), _rows(tmp_path / "replay.db")
    assert summary.predictions > 30 and summary.opened >= 2 and summary.closed >= 2  # the proof covers trading
    for table in COMPARED:
        assert _without_ids(live[table], table) == _without_ids(kernel[table], table), table
    assert len(live["fills"]) == 2 * len(live["positions"]) - sum(p[4] == "OPEN" for p in live["positions"])
