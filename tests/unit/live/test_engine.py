"""The engine in-process: recorded messages in through its stream handler, predictions out in the ledger."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd

from helios_live.clock import ExchangeClock
from helios_live.data.lake import Lake
from helios_live.engine.engine import Engine
from helios_live.ledger import Ledger
from helios_live.models.registry import Registry
from tests.conftest import sample
from tests.live_support import candle_messages, live_settings, make_bundle

BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"


def _candles(first: int, count: int) -> pd.DataFrame:
    return sample(BTC).iloc[first : first + count].reset_index(drop=True)


def _engine(home: Path, lake: Lake | None = None) -> Engine:
    settings = live_settings(home)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    return Engine(settings, ledger, Registry(settings.models_root), ExchangeClock(), lake=lake, tick_s=0.01)


async def _feed(engine: Engine, messages: list[str]) -> None:
    for raw in messages:
        await engine.on_message(raw, time.perf_counter())
    await engine.drain()


def _predictions(engine: Engine) -> list[dict[str, object]]:
    items, cursor = [], None
    while True:
        page = engine.ledger.predictions(pair="BTCPERP", cursor=cursor, limit=1000)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def test_every_closed_candle_after_warm_up_gets_one_prediction_with_its_chain(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    version = make_bundle(engine.settings.models_root)
    candles = _candles(0, 120)

    async def run() -> None:
        await engine.start(connect=False)
        await _feed(engine, candle_messages("BTCPERP", candles))
        await engine.close()

    asyncio.run(run())
    predictions = _predictions(engine)

    stamps = sorted(p["candle_ts"] for p in predictions)
    assert len(stamps) == len(set(stamps)) > 60
    # one minute per prediction, no hole once the window (4) and the features are warm
    assert all((b - a).total_seconds() == 60 for a, b in zip(stamps, stamps[1:], strict=False))
    first = predictions[-1]
    assert first["model_version"] == version and len(first["feature_hash"]) == 64
    assert first["steps"][0]["step"] == "prediction" and first["latency_ms"] is not None
    # the bundle's horizon is 2 x 5m: predictions older than ten minutes have their outcome
    done = [p for p in predictions if p["actual_outcome"] is not None]
    assert len(done) >= len(predictions) - 11
    assert all(p["correct"] == (p["prediction"] == p["actual_outcome"]) for p in done)


def test_warm_up_from_the_lake_makes_the_first_live_candle_a_decision(tmp_path: Path) -> None:
    history = _candles(0, 600)
    lake = Lake(tmp_path / "lake")
    day = history["ts"].iloc[0].date()
    for d, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", d, frame.reset_index(drop=True), {})
    assert day is not None
    engine = _engine(tmp_path, lake)
    make_bundle(engine.settings.models_root)
    live = _candles(500, 30)  # the stream starts where the lake still has history before it

    async def run() -> None:
        await engine.start(connect=False)
        await _feed(engine, candle_messages("BTCPERP", live))
        await engine.close()

    asyncio.run(run())
    predictions = _predictions(engine)

    first_live = live["ts"].iloc[0]
    assert min(p["candle_ts"] for p in predictions) == first_live.to_pydatetime()
    assert engine.states["BTCPERP"].backfilled == 500


def test_a_newly_promoted_model_takes_over_without_losing_or_repeating_a_candle(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    first = make_bundle(engine.settings.models_root, seed=1)
    messages = candle_messages("BTCPERP", _candles(0, 160))

    async def run() -> str:
        await engine.start(connect=False)
        await _feed(engine, messages[:80])
        second = make_bundle(engine.settings.models_root, seed=2)
        for _ in range(200):
            if engine.model_version == second:
                break
            await asyncio.sleep(0.01)
        await _feed(engine, messages[80:])
        await engine.close()
        return second

    second = asyncio.run(run())
    predictions = _predictions(engine)

    stamps = sorted(p["candle_ts"] for p in predictions)
    assert len(stamps) == len(set(stamps))
    assert all((b - a).total_seconds() == 60 for a, b in zip(stamps, stamps[1:], strict=False))
    assert {p["model_version"] for p in predictions} == {first, second}
    kinds = [e["kind"] for e in engine.ledger.events(limit=1000).items]
    assert kinds.count("MODEL_LOADED") == 2


def test_a_bundle_of_another_feature_set_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    first = make_bundle(engine.settings.models_root, seed=1)

    async def run() -> None:
        await engine.start(connect=False)
        make_bundle(engine.settings.models_root, seed=3, feature_set_version="0.9.0")
        await asyncio.sleep(0.3)
        await engine.close()

    asyncio.run(run())

    assert engine.model_version == first
    refused = engine.ledger.events(kind="MODEL_REFUSED", limit=10).items
    assert len(refused) == 1 and "feature set 0.9.0" in refused[0]["detail"]["reason"]


def test_switches_survive_a_restart_because_the_ledger_holds_them(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    make_bundle(engine.settings.models_root)

    async def first_run() -> None:
        await engine.start(connect=False)
        await engine.set_emergency_stop(True, "test")
        await engine.set_auto_trading(True)
        await engine.close()

    asyncio.run(first_run())
    again = _engine(tmp_path)

    async def second_run() -> None:
        await again.start(connect=False)
        await again.close()

    asyncio.run(second_run())

    assert again.emergency_stop and again.auto_trading
