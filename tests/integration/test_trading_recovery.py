"""Crash recovery on PostgreSQL: `helios live serve` trades on paper against the exchange
simulator, is killed with SIGKILL mid-run, restarts, and carries on from the ledger with
nothing lost and nothing done twice."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded
from helios_live.demo import free_port
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator
from tests.conftest import sample
from tests.ledger_support import temporary_database
from tests.live_support import make_bundle, serve

pytestmark = pytest.mark.integration
BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
TOKEN = "Rv7mQ4xK9pZ2wL8tN3bC-recovery"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAPITAL = 100_000.0


@pytest.fixture
def ledger_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_recovery") as url:
        yield url


class Simulator:
    """The exchange simulator on its own event loop in a thread: it keeps the market moving
    while the service is dead."""

    def __init__(self, recorded: Recorded, start: Any, speed: float) -> None:
        self.sim = ExchangeSimulator(recorded, speed=speed, start=start)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),), daemon=True)

    async def _run(self) -> None:
        self.sim.pause()
        async with self.sim:
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> ExchangeSimulator:
        self.thread.start()
        assert self.ready.wait(30)
        return self.sim

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)

    def resume(self) -> None:
        self.loop.call_soon_threadsafe(self.sim.resume)


def _until(condition: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__doc__ or condition}")
        time.sleep(0.1)


def test_a_killed_service_rebuilds_its_positions_and_account_from_the_ledger(tmp_path: Path, ledger_url: str) -> None:
    candles = sample(BTC).head(2400)
    start = candles["ts"].iloc[1200]  # 20 hours of history in the lake, then the replay
    home = tmp_path / "helios"
    lake = Lake(home / "lake")
    history = candles.loc[candles["ts"] < start]
    for day, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", day, frame.reset_index(drop=True), {})
    make_bundle(home / "models", lean=0)  # sure of BUY: every decision that passes the limits trades
    recorded = Recorded(candles={"BTCPERP": candles.loc[candles["ts"] >= start].reset_index(drop=True)})
    db = create_engine(ledger_url)

    def rows(query: str) -> list[Any]:
        with db.connect() as connection:
            return list(connection.execute(text(query)))

    def scalar(query: str) -> Any:
        return rows(query)[0][0]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    simulator = Simulator(recorded, start.to_pydatetime(), speed=300.0)
    with simulator as sim:
        env = {
            "HELIOS_HOME": str(home),
            "HELIOS_DATABASE_URL": ledger_url,
            "HELIOS_API_PORT": str(port),
            "HELIOS_API_TOKEN": TOKEN,
            "HELIOS_LIVE_PAIRS": "BTCPERP",
            "HELIOS_LIVE_CANDLES": "buckets",
            "HELIOS_LIVE_CLOCK": "exchange",
            "HELIOS_LIVE_WS_URL": sim.ws_url,
            "HELIOS_VALR_BASE_URL": sim.rest_url,
            "HELIOS_MODEL_WINDOW": "4",
            "HELIOS_TRADING_CAPITAL": str(CAPITAL),
            "HELIOS_RISK_MAX_HOLD_S": "300",  # a position lives five minutes: many open and close
        }
        first = serve(env, capture=False)
        try:
            _until(lambda: _up(base), 120)
            httpx.post(f"{base}/api/autonomous-engine/auto-trading/enable", headers=AUTH, timeout=10)
            simulator.resume()

            def traded_and_holding() -> bool:
                """three positions opened, one of them open now"""
                return (
                    scalar("SELECT count(*) FROM positions") >= 3
                    and scalar("SELECT count(*) FROM positions WHERE status = 'OPEN'") == 1
                )

            _until(traded_and_holding, 180)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        at_kill = {
            "positions": rows("SELECT key, status FROM positions ORDER BY id"),
            "open": [r[0] for r in rows("SELECT key FROM positions WHERE status = 'OPEN'")],
            "realised": scalar("SELECT coalesce(sum(realised_pnl), 0) FROM positions WHERE status = 'CLOSED'"),
            "predictions": scalar("SELECT count(*) FROM predictions"),
        }

        second = serve(env, capture=False)
        try:
            _until(lambda: _up(base), 120)

            def traded_again() -> bool:
                """two more positions after the restart"""
                return scalar("SELECT count(*) FROM positions") >= len(at_kill["positions"]) + 2

            _until(traded_again, 180)
            stop = httpx.post(f"{base}/api/autonomous-engine/emergency-stop", headers=AUTH, timeout=10)
            assert stop.status_code == 200
            _until(lambda: scalar("SELECT count(*) FROM positions WHERE status = 'OPEN'") == 0, 30)
            portfolio = httpx.get(f"{base}/api/portfolio", headers=AUTH, timeout=10).json()
            closed = httpx.get(
                f"{base}/api/positions", params={"status": "CLOSED", "limit": 1000}, headers=AUTH, timeout=10
            )
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(60)

    restored = rows("SELECT detail FROM engine_events WHERE kind = 'PORTFOLIO_RESTORED' ORDER BY id")
    # the second start found exactly what the first left: the open position and the cash
    assert restored[0][0]["open_positions"] == 0
    assert restored[1][0]["open_positions"] == len(at_kill["open"]) == 1
    held = rows(f"SELECT margin, entry_fee FROM positions WHERE key = '{at_kill['open'][0]}'")[0]  # noqa: S608
    assert restored[1][0]["cash"] == pytest.approx(CAPITAL + at_kill["realised"] - held[0] - held[1], abs=0.01)

    # nothing done twice: one position per deciding prediction, one opening and one closing
    # order per position, each with its fill
    positions = rows("SELECT key, status, prediction_id FROM positions")
    assert len({p[0] for p in positions}) == len(positions)
    assert len({p[2] for p in positions}) == len(positions)
    per_candle = rows("SELECT pair, candle_ts, count(*) FROM predictions GROUP BY pair, candle_ts HAVING count(*) > 1")
    assert per_candle == []
    orders = rows("SELECT position_key, purpose, count(*) FROM orders GROUP BY position_key, purpose")
    assert sorted((k, p) for k, p, _ in orders) == sorted(
        [(k, "OPEN") for k, _, _ in positions] + [(k, "CLOSE") for k, _, _ in positions]
    )
    assert all(count == 1 for *_, count in orders)
    assert scalar("SELECT count(*) FROM orders o LEFT JOIN fills f USING (client_order_id) WHERE f.id IS NULL") == 0

    # nothing lost: every position of the first run is in the ledger, the one it left open was
    # closed by the second (by the emergency stop, or its own exit), and the books balance
    statuses = dict(rows("SELECT key, status FROM positions"))
    assert all(statuses[key] == "CLOSED" for key, _ in at_kill["positions"])
    assert scalar("SELECT count(*) FROM predictions") > at_kill["predictions"]
    realised = scalar("SELECT sum(realised_pnl) FROM positions")
    assert portfolio["open_positions"] == 0
    assert portfolio["cash"] == pytest.approx(CAPITAL + realised, abs=0.01)
    assert portfolio["equity"] == pytest.approx(portfolio["cash"], abs=0.01)
    last = rows("SELECT cash FROM portfolio_snapshots ORDER BY id DESC LIMIT 1")[0][0]
    assert last == pytest.approx(CAPITAL + realised, abs=0.01)
    assert len(closed.json()["items"]) == len(positions)
    db.dispose()


def _up(base: str) -> bool:
    """the service answers"""
    try:
        status = httpx.get(f"{base}/api/autonomous-engine/status", headers=AUTH, timeout=1).json()
    except httpx.TransportError:
        return False
    return bool(status["status"] == "RUNNING")
