"""The real-time smoke test: simulator -> live service -> predictions in PostgreSQL, over real
sockets on loopback: warm-up from the lake, a dropped connection with reconnect, resubscribe
and gap backfill over REST, and garbage on the wire. (The logic of catching up is tested on
the TestClock in tests/parity/test_live_candles.py, without waiting on anything.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded
from helios_live.kernel.build import build_kernel
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator
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

    async def run() -> tuple[Kernel, int]:
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
            engine = build_kernel(settings, ledger)
            await engine.start()
            await _until(lambda: engine.client.accepted["SUBSCRIBED"] == 1)  # subscribed before the replay
            sim.resume()
            state = lambda: engine.states["BTCPERP"]  # noqa: E731 -- read after start
            await _until(lambda: state().predictions >= 20)
            await sim.drop_connections(refuse_s=180)  # three minutes the stream never sends: a hole
            await _until(lambda: engine.client.stats.connects == 2)
            await _until(lambda: state().catchup is None and state().predictions >= 45)
            await sim.send_garbage(40)
            await _until(lambda: sum(engine.client.rejected.values()) >= 40)
            beyond = (start + pd.Timedelta(minutes=60)).timestamp()
            await _until(lambda: state().predictions >= 60 and (state().last_ts or 0) > beyond)
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
    assert engine.client.rejected.total() >= 40 and sent > 100
