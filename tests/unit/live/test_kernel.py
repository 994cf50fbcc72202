"""The kernel in-process: typed events handed to it, predictions out in the ledger; the clock is
the events' own time, so nothing here waits on the wall clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd

from helios_core.market import Bucket, Tick
from helios_live.data.lake import Lake
from helios_live.data.recorded import buckets
from helios_live.kernel.kernel import Kernel
from tests.conftest import sample
from tests.live_support import feed, in_process, live_settings, make_bundle

BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"


def _candles(first: int, count: int) -> pd.DataFrame:
    return sample(BTC).iloc[first : first + count].reset_index(drop=True)


def _kernel(home: Path, lake: Lake | None = None, **overrides: object) -> Kernel:
    return in_process(live_settings(home, **overrides), lake=lake)


def _predictions(kernel: Kernel) -> list[dict[str, object]]:
    items, cursor = [], None
    while True:
        page = kernel.ledger.predictions(pair="BTCPERP", cursor=cursor, limit=1000)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _bars(candles: pd.DataFrame) -> list[Bucket]:
    return buckets("BTCPERP", candles)


def test_every_closed_candle_after_warm_up_gets_one_prediction_with_its_chain(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    version = make_bundle(kernel.settings.models_root)
    candles = _candles(0, 120)

    async def run() -> None:
        await kernel.start(connect=False)
        await feed(kernel, list(_bars(candles)))
        await kernel.close()

    asyncio.run(run())
    predictions = _predictions(kernel)

    stamps = sorted(p["candle_ts"] for p in predictions)
    assert len(stamps) == len(set(stamps)) > 60
    # one minute per prediction, no hole once the window (4) and the features are warm
    assert all((b - a).total_seconds() == 60 for a, b in zip(stamps, stamps[1:], strict=False))
    first = predictions[-1]
    assert first["model_version"] == version and len(first["feature_hash"]) == 64
    assert first["steps"][0]["step"] == "prediction"
    assert first["latency_ms"] is None  # handed over in-process: no message arrived, nothing to time
    # the bundle's horizon is 2 x 5m: predictions older than ten minutes have their outcome
    done = [p for p in predictions if p["actual_outcome"] is not None]
    assert len(done) >= len(predictions) - 11
    assert all(p["correct"] == (p["prediction"] == p["actual_outcome"]) for p in done)


def test_a_bucket_closes_on_the_clock_once_its_grace_is_over(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    make_bundle(kernel.settings.models_root)
    candles = _bars(_candles(0, 30))

    async def run() -> tuple[int, int]:
        await kernel.start(connect=False)
        await feed(kernel, list(candles))
        before = kernel.states["BTCPERP"].candles
        # no later bucket: only the clock can close the last minute, 2 s after its end
        await feed(kernel, [Tick(candles[-1].start + 60 + 1.9)])
        early = kernel.states["BTCPERP"].candles
        await feed(kernel, [Tick(candles[-1].start + 60 + 2.0)])
        closed = kernel.states["BTCPERP"].candles
        await kernel.close()
        return before, early - before, closed - early

    before, early, late = asyncio.run(run())
    assert early == 0 and late == 1 and before > 20


def test_warm_up_from_the_lake_makes_the_first_live_candle_a_decision(tmp_path: Path) -> None:
    history = _candles(0, 600)
    lake = Lake(tmp_path / "lake")
    for d, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", d, frame.reset_index(drop=True), {})
    kernel = _kernel(tmp_path, lake)
    make_bundle(kernel.settings.models_root)
    live = _candles(500, 30)  # the stream starts where the lake still has history before it

    async def run() -> None:
        await kernel.start(connect=False)
        await feed(kernel, list(_bars(live)))
        await kernel.close()

    asyncio.run(run())
    predictions = _predictions(kernel)

    first_live = live["ts"].iloc[0]
    assert min(p["candle_ts"] for p in predictions) == first_live.to_pydatetime()
    assert kernel.states["BTCPERP"].backfilled == 500


def test_a_newly_promoted_model_takes_over_at_a_poll_without_losing_or_repeating_a_candle(
    tmp_path: Path,
) -> None:
    kernel = _kernel(tmp_path)
    first = make_bundle(kernel.settings.models_root, seed=1)
    events = _bars(_candles(0, 160))

    async def run() -> str:
        await kernel.start(connect=False)
        await feed(kernel, events[:80])
        second = make_bundle(kernel.settings.models_root, seed=2)
        await feed(kernel, events[80:])  # the next poll (every 60 s of the clock) loads it
        await kernel.close()
        return second

    second = asyncio.run(run())
    predictions = _predictions(kernel)

    stamps = sorted(p["candle_ts"] for p in predictions)
    assert len(stamps) == len(set(stamps))
    assert all((b - a).total_seconds() == 60 for a, b in zip(stamps, stamps[1:], strict=False))
    assert {p["model_version"] for p in predictions} == {first, second}
    kinds = [e["kind"] for e in kernel.ledger.events(limit=1000).items]
    assert kinds.count("MODEL_LOADED") == 2


def test_a_bundle_of_another_feature_set_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    first = make_bundle(kernel.settings.models_root, seed=1)
    events = _bars(_candles(0, 10))

    async def run() -> None:
        await kernel.start(connect=False)
        await feed(kernel, events[:2])
        make_bundle(kernel.settings.models_root, seed=3, feature_set_version="0.9.0")
        await feed(kernel, events[2:])  # eight minutes: eight polls, one refusal recorded
        await kernel.close()

    asyncio.run(run())

    assert kernel.model_version == first
    refused = kernel.ledger.events(kind="MODEL_REFUSED", limit=10).items
    assert len(refused) == 1 and "feature set 0.9.0" in refused[0]["detail"]["reason"]


def test_switches_survive_a_restart_because_the_ledger_holds_them(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    make_bundle(kernel.settings.models_root)

    async def first_run() -> None:
        await kernel.start(connect=False)
        await kernel.set_emergency_stop(True, "test")
        await kernel.set_auto_trading(True)
        await kernel.close()

    asyncio.run(first_run())
    again = _kernel(tmp_path)

    async def second_run() -> None:
        await again.start(connect=False)
        await again.close()

    asyncio.run(second_run())

    assert again.emergency_stop and again.auto_trading


def test_engine_events_carry_the_clock_time_not_the_machines(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    make_bundle(kernel.settings.models_root)
    candles = _candles(0, 30)

    async def run() -> None:
        await kernel.start(connect=False)
        await feed(kernel, list(_bars(candles)))
        await kernel.set_auto_trading(True)
        await kernel.close()

    asyncio.run(run())
    events = {e["kind"]: e["at"] for e in kernel.ledger.events(limit=100).items}

    # the candles are from 2021-12-31: so is every event recorded once the data had a time
    assert events["CATCH_UP"].year == events["AUTO_TRADING"].year == events["STOP"].year == 2021
