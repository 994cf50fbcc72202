"""Simulator -> live service -> predictions in PostgreSQL, over real sockets on loopback:
warm-up from the lake, a dropped connection with reconnect, resubscribe and gap backfill
over REST, and garbage on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from helios_core.candles import trades_to_candles, validate_trades
from helios_core.features.streaming import Bar
from helios_core.timeframes import Timeframe
from helios_live.api.app import build_engine
from helios_live.data.lake import Lake
from helios_live.engine.engine import Engine
from helios_live.ledger import Ledger
from helios_live.simulator.exchange import ExchangeSimulator
from helios_live.simulator.valr_rest import Recorded
from tests.conftest import sample
from tests.ledger_support import temporary_database
from tests.live_support import live_settings, make_bundle

pytestmark = pytest.mark.integration
BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
SPEED = 600.0  # one simulated minute every 0.1 s


@pytest.fixture
def ledger_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_live") as url:
        yield url


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll the engine's own state: it has no event for each of these conditions."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 -- polling state owned by another task
            await asyncio.sleep(0.02)


def test_simulator_to_predictions_in_postgres_through_a_dropped_connection(tmp_path: Path, ledger_url: str) -> None:
    candles = sample(BTC).head(1500)
    start = candles["ts"].iloc[1200]  # the lake has the 20 hours before; the stream replays after
    lake = Lake(tmp_path / "helios" / "lake")
    history = candles.loc[candles["ts"] < start]
    for day, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", day, frame.reset_index(drop=True), {})
    recorded = Recorded(candles={"BTCPERP": candles.loc[candles["ts"] >= start].reset_index(drop=True)})

    async def run() -> tuple[Engine, int]:
        sim = ExchangeSimulator(recorded, speed=SPEED, start=start.to_pydatetime())
        sim.pause()  # the replay starts once the service is connected
        async with sim:
            settings = live_settings(
                tmp_path / "helios",
                database_url=ledger_url,
                live_ws_url=sim.ws_url,
                valr_base_url=sim.rest_url,
                http_max_retries=2,
            )
            make_bundle(settings.models_root)
            ledger = Ledger(settings.resolved_database_url)
            ledger.migrate()
            engine = build_engine(settings, ledger)
            await engine.start()
            await _until(lambda: engine.parser.accepted["SUBSCRIBED"] == 1)  # subscribed before the replay
            sim.resume()
            state = lambda: engine.states["BTCPERP"]  # noqa: E731 -- read after start
            await _until(lambda: state().predictions >= 20)
            await sim.drop_connections()
            await _until(lambda: engine.stream is not None and engine.stream.stats.connects == 2)
            await _until(lambda: state().catchup is None and state().predictions >= 45)
            await sim.send_garbage(40)
            await _until(lambda: sum(engine.parser.rejected.values()) >= 40)
            await _until(lambda: state().predictions >= 60)
            await engine.drain()
            sent = sim.sent
            await engine.close()
            ledger.close()
            return engine, sent

    engine, sent = asyncio.run(run())
    state = engine.states["BTCPERP"]

    # the candle series has no hole: every minute from the lake's history through the replay,
    # warm-up, live and backfilled candles alike, equal to the recording
    bars = pd.DataFrame([b[:6] for b in state.recent], columns=["ts", "open", "high", "low", "close", "volume"])
    bars["ts"] = pd.to_datetime(bars["ts"], unit="s", utc=True)
    assert (bars["ts"].diff().dropna() == pd.Timedelta(minutes=1)).all()
    expected = candles.set_index("ts").loc[bars["ts"]]
    for column in ("open", "high", "low", "close", "volume"):
        assert (bars[column].to_numpy() == expected[column].to_numpy()).all(), column
    assert bars["ts"].iloc[-1] > start + pd.Timedelta(minutes=60)

    ledger = Ledger(ledger_url)
    events = [e["kind"] for e in ledger.events(limit=1000).items][::-1]
    catch_ups = ledger.events(kind="CATCH_UP", limit=10).items[::-1]
    predictions = ledger.predictions(pair="BTCPERP", limit=1000).items
    ledger.close()
    assert events.count("STREAM_CONNECTED") == 2 and events.count("STREAM_DISCONNECTED") == 1
    assert catch_ups[0]["detail"]["source"].startswith("lake")  # warm-up at start
    assert catch_ups[1]["detail"]["source"] == "none+rest" and catch_ups[1]["detail"]["candles"] >= 1  # the hole
    stamps = [p["candle_ts"] for p in predictions]
    assert len(stamps) == len(set(stamps)) >= 60  # one prediction per live candle, none twice
    assert min(stamps) == start.to_pydatetime()  # warm from the lake: the very first live candle decided
    assert engine.parser.rejected.total() >= 40 and sent > 100


def test_trade_stream_candles_equal_the_batch_candles_across_a_dropped_connection(tmp_path: Path) -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet")
    start = trades["ts"].iloc[0].ceil("1min")
    replay = trades.loc[(trades["ts"] >= start) & (trades["ts"] < start + pd.Timedelta(hours=3))]
    recorded = Recorded(trades={"XRPETH": replay.reset_index(drop=True)})

    async def run() -> Engine:
        sim = ExchangeSimulator(recorded, speed=1200.0, start=start.to_pydatetime())
        sim.pause()
        async with sim:
            settings = live_settings(
                tmp_path / "helios",
                live_pairs=("XRPETH",),
                live_candles="trades",
                live_ws_url=sim.ws_url,
                valr_base_url=sim.rest_url,
            )
            make_bundle(settings.models_root)
            ledger = Ledger(settings.resolved_database_url)
            ledger.migrate()
            engine = build_engine(settings, ledger)
            await engine.start()
            await _until(lambda: engine.parser.accepted["SUBSCRIBED"] == 1)
            sim.resume()
            state = engine.states["XRPETH"]
            await _until(lambda: state.candles >= 30)
            await sim.drop_connections()
            await _until(lambda: engine.stream is not None and engine.stream.stats.connects == 2)
            await _until(lambda: state.catchup is None and state.backfilled > 0)
            await _until(lambda: sim.finished.is_set())
            await asyncio.sleep(0.3)  # the last candle closes on the clock's grace
            await engine.drain()
            await engine.close()
            ledger.close()
            return engine

    engine = asyncio.run(run())
    state = engine.states["XRPETH"]

    live = pd.DataFrame([b[:8] for b in state.recent], columns=list(Bar._fields[:8]))
    end = pd.Timestamp(int(live["ts"].iloc[-1]) + 60, unit="s", tz="UTC")
    batch = trades_to_candles(validate_trades(replay, "replay"), Timeframe.parse("1m"), end)
    batch = batch.loc[batch["ts"] >= pd.Timestamp(int(live["ts"].iloc[0]), unit="s", tz="UTC")]
    assert len(live) == len(batch) > 60  # nothing lost to the drop, nothing counted twice
    assert (live["ts"].to_numpy() == batch["ts"].astype("int64").to_numpy() // 10**9).all()
    for column in ("open", "high", "low", "close", "trade_count"):
        assert (live[column].to_numpy() == batch[column].to_numpy(dtype=float)).all(), column
    assert state.backfilled > 0 and engine.stream is not None and engine.stream.stats.disconnects == 1
