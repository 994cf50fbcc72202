"""A real ONNX bundle in a real registry for live-service tests (untrained weights: the plumbing
is under test here, not the model's skill)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from helios_core.features.spec import FEATURE_SET_VERSION, TIMEFRAMES
from helios_core.market import Bucket, DataEvent
from helios_dagster.ml.export import export_onnx
from helios_dagster.ml.model import PRESETS, HeliosNet
from helios_live.backtest.replay import ReplayDataClient
from helios_live.clock import Clock, ExchangeClock
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, buckets
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.ledger.spool import Spool
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from tests.conftest import REPO, sample


def make_bundle(
    root: Path,
    *,
    window: int = 4,
    seed: int = 0,
    feature_set_version: str = FEATURE_SET_VERSION,
    promote: bool = True,
    lean: int | None = None,
    base: str | None = None,
) -> str:
    """`lean` (a class index: 0 BUY, 1 SELL) biases the untrained model towards that class, sure
    enough to pass the confidence floors, so that trading tests see trades. `base` names the
    timeframe it decides on (none named: the kernel's default, 1m)."""
    torch.manual_seed(seed)
    net = HeliosNet(PRESETS["small"]).eval()
    if lean is not None:
        with torch.no_grad():
            net.classes.bias[lean] += 2.0
            net.confidence.bias += 2.0
    registry = Registry(root)
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=root))
    export_onnx(net, staged / "model.onnx", window)
    meta = {
        "feature_set_version": feature_set_version,
        "timeframes": list(TIMEFRAMES),
        "window": window,
        "preset": "small",
        "label": {"timeframe": "5m", "candles": 2, "up": 0.001, "down": 0.001},
        "checks": {"onnx_parity": True, "leakage": True},
    }
    if base is not None:
        meta["base_timeframe"] = base
        meta["label"] = {**meta["label"], "timeframe": base}  # type: ignore[dict-item]
    bundle = registry.register(staged, meta)
    if promote:
        registry.promote(bundle.version, "test")
    return bundle.version


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def bucket_message(pair: str, start: int, o: float, h: float, low: float, c: float, v: float) -> str:
    data = {"currencyPairSymbol": pair, "bucketPeriodInSeconds": 60, "startTime": iso(start)[:-5] + "Z"}
    data.update(open=repr(o), high=repr(h), low=repr(low), close=repr(c), volume=repr(v))
    return json.dumps({"type": "NEW_TRADE_BUCKET", "currencyPairSymbol": pair, "data": data})


def trade_message(pair: str, ts: float, price: float, quantity: float, buy: bool, trade_id: str) -> str:
    data = {"price": repr(price), "quantity": repr(quantity), "currencyPair": pair, "tradedAt": iso(ts)}
    data.update(takerSide="buy" if buy else "sell", id=trade_id)
    return json.dumps({"type": "NEW_TRADE", "currencyPairSymbol": pair, "data": data})


def candle_messages(pair: str, candles: pd.DataFrame) -> list[str]:
    """Recorded 1m candles as the bucket messages an exchange sends when each closes."""
    starts = candles["ts"].to_numpy(dtype="datetime64[s]").astype("int64")
    return [
        bucket_message(pair, int(s), r.open, r.high, r.low, r.close, r.volume)
        for s, r in zip(starts, candles.itertuples(), strict=True)
    ]


def live_settings(home: Path, **overrides: Any) -> HeliosSettings:
    values: dict[str, Any] = {
        "home": home,
        "live_pairs": ("BTCPERP",),
        "live_candles": "buckets",
        "live_clock": "exchange",
        "live_autostart": False,
        "live_model_poll_s": 60.0,
        "model_window": 4,
        "risk_fit_process": False,  # a spawned fitter costs seconds per engine; the service itself uses one
    }
    return HeliosSettings.model_validate({**values, **overrides})


def serve(env: dict[str, str], *, capture: bool = True) -> subprocess.Popen[str]:
    """`helios live serve` as a process configured by `env`; without `capture` its logs are
    dropped (a long run would fill a pipe nobody reads and stall the service)."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(  # noqa: S603 -- our own CLI with fixed arguments
        [sys.executable, "-m", "helios_live.cli", "serve"],
        cwd=REPO,
        env=os.environ | env,
        stdout=output,
        stderr=output,
        text=True,
    )


def in_process(
    settings: HeliosSettings,
    *,
    lake: Lake | None = None,
    recorded: Recorded | None = None,
    clock: Clock | None = None,
    lockstep: bool = True,
    spool: Spool | None = None,
) -> Kernel:
    """The kernel with a migrated SQLite ledger, a clock that follows the events the test hands
    it, and a replay client whose history (backfills) is `recorded` (none by default)."""
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    clock = clock or ExchangeClock()
    client = ReplayDataClient(recorded or Recorded(), clock, start=0.0, from_trades=settings.live.candles == "trades")
    registry = Registry(settings.models_root)
    return Kernel(settings, ledger, registry, clock, client, lake=lake, lockstep=lockstep, spool=spool)


async def feed(kernel: Kernel, events: list[DataEvent]) -> None:
    for event in events:
        await kernel.on_event(event)
    await kernel.drain()


BTC = "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
HISTORY = 1200  # 20 hours in the lake: 240 five-minute returns for the volatility model


def trading_kernel(home: Path, spool: Spool | None = None, **overrides: Any) -> tuple[Kernel, list[Bucket]]:
    """A BTC-PERP kernel with 20 hours in its lake and a model that leans BUY, and the two
    hours after that as buckets to replay."""
    candles = sample(BTC).head(HISTORY + 120)
    lake = Lake(home / "lake")
    history = candles.iloc[:HISTORY]
    for day, frame in history.groupby(history["ts"].dt.date):
        lake.write("candles", "BTCPERP", "1m", day, frame.reset_index(drop=True), {})
    settings = live_settings(home, **overrides)
    make_bundle(settings.models_root, lean=0)
    return in_process(settings, lake=lake, spool=spool), buckets(
        "BTCPERP", candles.iloc[HISTORY:].reset_index(drop=True)
    )


async def start_trading(kernel: Kernel, live: list[Bucket], minutes: int) -> None:
    """Start, catch up from the lake (which fits the volatility model), enable trading, replay."""
    await kernel.start(connect=False)
    await kernel.set_auto_trading(True)
    await feed(kernel, live[:3])
    assert kernel.desk.trader.vol["BTCPERP"].model is not None  # fitted at the end of the warm-up
    await feed(kernel, live[3:minutes])
