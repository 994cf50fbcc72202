"""A replay through the kernel under the TestClock: it never reads the wall clock, and the same
inputs give the same ledger, row for row."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import shutil
import sys
import time
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

import helios_core
import helios_live
from helios_live.backtest.replay import ReplayDataClient
from helios_live.backtest.runner import ReplayFailed, ReplaySummary, replay
from helios_live.clock import TestClock
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, epoch_seconds, from_lake, load_recorded
from tests.conftest import SAMPLE, sample
from tests.live_support import live_settings, make_bundle

BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
WALL_CLOCK = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns")
TABLES = ("predictions", "decision_steps", "risk_decisions", "portfolio_checks", "orders", "fills", "positions")


class WallClockRead(AssertionError):
    pass


def _refuse(name: str) -> Any:
    def refused(*args: object, **kwargs: object) -> Any:
        raise WallClockRead(f"{name}() was called during the replay")

    return refused


class _TimeModule(ModuleType):
    """`time` as Helios code sees it during the test: every clock read raises."""

    def __init__(self) -> None:
        super().__init__("time")

    def __getattr__(self, name: str) -> Any:
        if name in WALL_CLOCK:
            return _refuse(f"time.{name}")
        return getattr(time, name)


class _Datetime(datetime):
    now = classmethod(_refuse("datetime.now"))  # type: ignore[assignment]
    utcnow = classmethod(_refuse("datetime.utcnow"))  # type: ignore[assignment]
    today = classmethod(_refuse("datetime.today"))  # type: ignore[assignment]


class _Date(date):
    today = classmethod(_refuse("date.today"))  # type: ignore[assignment]


def _helios_modules() -> list[ModuleType]:
    for package in (helios_core, helios_live):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    return [m for name, m in sys.modules.items() if name.split(".")[0] in ("helios_core", "helios_live")]


def _forbid_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """In every Helios module: `time`'s clocks, `datetime.now` and `date.today` raise. Libraries
    (asyncio, logging, SQLAlchemy) keep their own clocks: they are not Helios's decisions."""
    for module in _helios_modules():
        names = vars(module)
        if names.get("time") is time:
            monkeypatch.setattr(module, "time", _TimeModule())
        for name in WALL_CLOCK:
            if names.get(name) is getattr(time, name):
                monkeypatch.setattr(module, name, _refuse(name))
        if names.get("datetime") is datetime:
            monkeypatch.setattr(module, "datetime", _Datetime)
        if names.get("date") is date:
            monkeypatch.setattr(module, "date", _Date)


def _model(home: Path) -> str:
    return make_bundle(home / "models", lean=0)


def _run(home: Path, candles: pd.DataFrame, version: str) -> ReplaySummary:
    settings = live_settings(
        home,
        risk_max_hold_s=1800.0,  # positions come and go within the replay: exits, time-outs
        risk_refit_s=3600.0,  # refits on the timer, not only at the warm-up
        portfolio_snapshot_s=300.0,
    )
    start = epoch_seconds(candles["ts"].iloc[0])
    recorded = Recorded(candles={"BTCPERP": candles})
    return asyncio.run(replay(settings, recorded, start=start, model_version=version))


def _rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(f"sqlite:///{home.resolve() / 'helios.db'}")
    with engine.connect() as connection:
        rows = {t: [tuple(r) for r in connection.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in TABLES}  # noqa: S608
        rows["engine_events"] = [
            tuple(r) for r in connection.execute(text("SELECT at, kind, pair, detail FROM engine_events ORDER BY id"))
        ]
    engine.dispose()
    return rows


def test_a_whole_replay_never_reads_the_wall_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    candles = sample(BTC).head(1440)  # a day: warm-up, decisions, fills, exits, refits, snapshots
    version = _model(tmp_path)  # registering a model stamps it with the machine's time: before the test
    _forbid_the_wall_clock(monkeypatch)
    with pytest.raises(WallClockRead):
        helios_live.clock.time.time()  # the patch is in place: a read would fail the replay
    with pytest.raises(WallClockRead):
        helios_live.kernel.kernel.as_datetime.__globals__["datetime"].now()

    summary = _run(tmp_path, candles, version)

    assert summary.errors == {}
    assert summary.predictions > 1000 and summary.opened > 0 and summary.closed > 0
    events = {row[1] for row in _rows(tmp_path)["engine_events"]}
    assert {"START", "CATCH_UP", "VOLATILITY_FIT", "STOP"} <= events


def test_the_same_replay_twice_writes_the_same_ledger(tmp_path: Path) -> None:
    candles = sample(BTC).head(900)

    version = _model(tmp_path / "a")
    shutil.copytree(tmp_path / "a" / "models", tmp_path / "b" / "models")  # the same model in both

    first, second = _run(tmp_path / "a", candles, version), _run(tmp_path / "b", candles, version)

    assert first == second
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    for table in a:
        assert a[table] == b[table], table
    assert len(a["positions"]) > 0 and len(a["predictions"]) > 800


def test_the_replay_client_never_serves_a_candle_its_clock_has_not_reached() -> None:
    candles = sample(BTC).head(120)
    start = epoch_seconds(candles["ts"].iloc[0])
    clock = TestClock(start_s=start + 30 * 60)
    client = ReplayDataClient(Recorded(candles={"BTCPERP": candles}), clock, start=start, from_trades=False)

    bars = asyncio.run(client.history("BTCPERP", start, start + 7200))

    assert len(bars) == 30 and bars[-1].ts + 60 <= clock.timestamp()


def test_a_recording_from_the_lake_is_its_1m_candles(tmp_path: Path) -> None:
    candles = sample(BTC).head(3000)
    lake = Lake(tmp_path / "lake")
    for day, frame in candles.groupby(candles["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", day, frame.reset_index(drop=True), {})
    first, last = candles["ts"].iloc[0].date(), candles["ts"].iloc[-1].date()

    recorded = from_lake(lake, ["BTCPERP", "ETHZAR"], first, last)

    assert list(recorded.candles) == ["BTCPERP"] and not recorded.trades
    pd.testing.assert_frame_equal(recorded.candles["BTCPERP"], candles.reset_index(drop=True), check_dtype=False)


def test_a_replay_refuses_a_ledger_that_holds_decisions_already(tmp_path: Path) -> None:
    candles = sample(BTC).head(120)
    version = _model(tmp_path)
    _run(tmp_path, candles, version)

    with pytest.raises(ReplayFailed, match="holds decisions already"):
        _run(tmp_path, candles, version)


def test_the_replay_client_hands_over_the_trades_or_the_buckets_as_a_subscription_would() -> None:
    recorded = load_recorded(SAMPLE, ["XRP-ETH"])  # both trades and 1m candles for one pair
    start = epoch_seconds(recorded.trades["XRPETH"]["ts"].iloc[0])

    def kinds(from_trades: bool) -> set[str]:
        client = ReplayDataClient(recorded, TestClock(start_s=start), start=start, from_trades=from_trades)
        seen: list[Any] = []

        async def sink(event: Any, received: float | None) -> None:
            seen.append(event)

        asyncio.run(client.run(("XRPETH",), sink))
        return {type(e).__name__ for e in seen}

    assert kinds(True) == {"Reconnected", "TradeTick", "MarketSummary"}
    assert kinds(False) == {"Reconnected", "Bucket", "MarketSummary"}
