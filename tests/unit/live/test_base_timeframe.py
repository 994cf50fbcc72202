"""The kernel on a model whose base timeframe is 5m: 5m candles from trades or 5m buckets, one
decision per 5m close with the 1m block masked, 5m returns for the volatility model, the lake's
and the replay client's history at 5m, a health limit of two candles, and a model of another
base refused while the engine runs. The 1m behaviour is the rest of the suite's."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from helios_core.bars import CandleBuilder
from helios_core.candles import trades_to_candles, validate_candles, validate_trades
from helios_core.features.spec import BLOCK, FEATURE_SET_VERSION, TIMEFRAMES, vector_names
from helios_core.features.streaming import Bar
from helios_core.market import Bucket, TradeTick
from helios_core.timeframes import Timeframe
from helios_dagster.ml.export import export_onnx
from helios_dagster.ml.model import PRESETS, HeliosNet
from helios_live.backtest.replay import ReplayDataClient
from helios_live.backtest.runner import replay
from helios_live.clock import Clock, LiveClock, TestClock
from helios_live.data.history import lake_bars
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded, epoch_seconds, from_lake, load_recorded, timeline
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.models.inference import Batcher, Predictor, load
from helios_live.models.registry import Registry, RegistryError
from helios_live.settings import HeliosSettings
from helios_live.trading.volatility import PairVolatility
from tests.conftest import SAMPLE, sample
from tests.live_support import in_process, live_settings, make_bundle

M5 = Timeframe.parse("5m")
PAIR = "ETHBTC"
ETH = "ETH-BTC_5m_2018-01.parquet"  # 20 days of real 5m candles, no gap


def make_5m_bundle(root: Path, *, base: str = "5m", seed: int = 1, promote: bool = True) -> str:
    """An untrained bundle as training on 5m pairs registers it: base 5m, the 1m block never
    valid in its training data."""
    torch.manual_seed(seed)
    net = HeliosNet(PRESETS["small"]).eval()
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=root))
    export_onnx(net, staged / "model.onnx", 4)
    finer = {tf for tf in TIMEFRAMES if Timeframe.parse(tf) < Timeframe.parse(base)}
    meta = {
        "feature_set_version": FEATURE_SET_VERSION,
        "timeframes": list(TIMEFRAMES),
        "window": 4,
        "preset": "small",
        "base_timeframe": base,
        "label": {"timeframe": "5m", "candles": 2, "up": 0.001, "down": 0.001},
        "feature_coverage": {name: 0.0 if name.split(".")[0] in finer else 1.0 for name in vector_names()},
        "checks": {"onnx_parity": True, "leakage": True},
    }
    registry = Registry(root)
    bundle = registry.register(staged, meta)
    if promote:
        registry.promote(bundle.version, "test")
    return bundle.version


def _eth(rows: int | None = None) -> pd.DataFrame:
    candles = validate_candles(sample(ETH), M5, ETH)
    return candles if rows is None else candles.head(rows)


def _settings(home: Path, **overrides: Any) -> HeliosSettings:
    return live_settings(home, live_pairs=(PAIR,), **overrides)


class RecordingBatcher(Batcher):
    """The kernel's batcher, keeping every model input it was asked to decide on."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[np.ndarray] = []

    async def predict(self, predictor: Predictor, features: np.ndarray, mask: np.ndarray) -> Any:
        self.masks.append(mask)
        return await super().predict(predictor, features, mask)


def test_a_5m_builder_makes_the_lakes_5m_candles_from_trades() -> None:
    trades = sample("XRP-ETH_trades_2019-10.parquet")
    stamps = trades["ts"].to_numpy(dtype="datetime64[us]").astype("int64") / 1e6
    ticks = [
        TradeTick("XRPETH", t, p, q, s == "BUY", str(i))
        for t, p, q, s, i in zip(
            stamps, trades["price"], trades["quantity"], trades["side"], trades["trade_id"], strict=True
        )
    ]
    builder = CandleBuilder(grace_s=2.0, step=300)
    bars = [bar for t in ticks if (bar := builder.on_trade(t)) is not None]
    last = builder.advance(stamps[-1] + 400)
    bars += [last] if last else []
    end = pd.Timestamp(trades["ts"].iloc[-1]).ceil("5min")

    batch = trades_to_candles(validate_trades(trades, "sample"), M5, end)

    assert len(bars) == len(batch) > 500
    assert [b.ts for b in bars] == [int(t.timestamp()) for t in batch["ts"]]
    for i, column in enumerate(("open", "high", "low", "close"), start=1):
        assert [b[i] for b in bars] == batch[column].tolist(), column
    assert [b.trade_count for b in bars] == batch["trade_count"].astype(float).tolist()
    np.testing.assert_allclose([b.volume for b in bars], batch["volume"], rtol=1e-12)


def test_a_builder_takes_only_buckets_of_its_own_period() -> None:
    five, one = CandleBuilder(step=300), CandleBuilder()
    minute = Bucket(PAIR, 600, 60, 1.0, 1.0, 1.0, 1.0, 1.0)
    candle = Bucket(PAIR, 600, 300, 1.0, 2.0, 0.5, 1.5, 9.0)

    assert five.on_bucket(minute) is None and five.current is None  # a minute is no 5m candle
    assert one.on_bucket(candle) is None and one.current is None
    assert five.on_bucket(candle) is None
    assert five.advance(600 + 300 + 1.9) is None  # within the grace
    assert five.advance(600 + 300 + 2.0) == Bar(600, 1.0, 2.0, 0.5, 1.5, 9.0)


def test_a_5m_candle_completes_its_5m_return_at_once() -> None:
    five, one = PairVolatility(100), PairVolatility(100)
    closes = [100.0, 101.0, 99.0, 99.5]

    returns = [five.on_bar(Bar(3000 + 300 * i, c, c, c, c, 1.0), 300) for i, c in enumerate(closes)]
    # The same closes as the last minute of each 5m bucket, on a 1m base: the same returns.
    minutes = [one.on_bar(Bar(3000 + 300 * i + 240, c, c, c, c, 1.0)) for i, c in enumerate(closes)]

    assert returns[0] is None and returns[1:] == pytest.approx(np.diff(np.log(closes)).tolist())
    assert minutes == returns and five.total == 3
    assert five.on_bar(Bar(3000 + 300 * 5, 99.0, 99.0, 99.0, 99.0, 1.0), 300) is None  # across a gap: none


def test_the_bundle_names_its_base_timeframe(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    old = make_bundle(tmp_path, promote=False)  # a bundle from before the base was recorded
    five = make_5m_bundle(tmp_path, promote=False)
    hourly = make_5m_bundle(tmp_path, base="1h", seed=2, promote=False)

    assert (load(registry, old).base_timeframe, load(registry, old).step) == ("1m", 60)
    assert (load(registry, five).base_timeframe, load(registry, five).step) == ("5m", 300)
    with pytest.raises(RegistryError, match="base timeframe '1h'"):
        load(registry, hourly)


def test_the_recordings_hold_5m_candles(tmp_path: Path) -> None:
    candles = _eth(600)
    lake = Lake(tmp_path / "lake")
    for day, frame in candles.groupby(candles["ts"].dt.date):
        lake.write("candles", PAIR, "5m", day, frame.reset_index(drop=True), {})
    first, last = candles["ts"].iloc[0].date(), candles["ts"].iloc[-1].date()

    from_files = load_recorded(SAMPLE, ["ETH-BTC"], timeframe="5m")
    from_the_lake = from_lake(lake, [PAIR], first, last, timeframe="5m")
    events = timeline(from_the_lake, start=0.0, summary_every_s=None)
    start = epoch_seconds(candles["ts"].iloc[0])
    bars = lake_bars(lake, PAIR, start, start + 3600, step=300)

    assert from_files.timeframe == from_the_lake.timeframe == "5m"
    assert len(from_files.candles[PAIR]) == 5760 and len(from_the_lake.candles[PAIR]) == 600
    assert all(isinstance(e.event, Bucket) and e.event.period == 300 for e in events)
    assert [e.at for e in events[:2]] == [start + 300, start + 600]  # due when each closes
    assert [b.ts for b in bars] == [int(start) + 300 * i for i in range(12)]
    assert from_lake(lake, [PAIR], first, last).candles == {}  # it has no 1m candles


def _replay_kernel(home: Path, candles: pd.DataFrame, start: float, lake: Lake | None) -> Kernel:
    settings = _settings(home)
    make_5m_bundle(settings.models_root)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    clock = TestClock(start_s=start)
    recorded = Recorded(candles={PAIR: candles.reset_index(drop=True)}, timeframe="5m")
    client = ReplayDataClient(recorded, clock, start=start, from_trades=False)
    registry = Registry(settings.models_root)
    kernel = Kernel(settings, ledger, registry, clock, client, lake=lake, lockstep=True, health=False)
    kernel.batcher = RecordingBatcher()
    return kernel


def test_a_replay_of_a_5m_pair_decides_once_per_5m_close(tmp_path: Path) -> None:
    candles = _eth(288 + 24 + 144)  # a day in the lake, two hours for the replay's history, twelve live
    lake = Lake(tmp_path / "lake")
    warm = candles.iloc[:288]
    for day, frame in warm.groupby(warm["ts"].dt.date):
        lake.write("candles", PAIR, "5m", day, frame.reset_index(drop=True), {})
    live = candles.iloc[288 + 24 :]
    start = epoch_seconds(live["ts"].iloc[0]) + 300  # a candle is replayed from its close on
    kernel = _replay_kernel(tmp_path, candles, start, lake)
    batcher = kernel.batcher
    assert isinstance(batcher, RecordingBatcher)

    async def run() -> dict[str, Any]:
        await kernel.start(connect=False)
        await kernel.client.run(kernel.pairs, kernel.on_event)
        await kernel.drain()
        state, vol = kernel.states[PAIR], kernel.desk.trader.vol[PAIR]
        seen = {"step": state.step, "candles": state.candles, "backfilled": state.backfilled, "returns": vol.total}
        seen["fitted"] = vol.model is not None
        seen["rows"] = kernel.ledger.predictions(limit=1000).items
        seen["catch_up"] = kernel.ledger.events(kind="CATCH_UP").items
        await kernel.close()
        return seen

    seen = asyncio.run(run())
    rows = sorted(seen["rows"], key=lambda r: r["candle_ts"])
    opens = [int(pd.Timestamp(r["candle_ts"]).timestamp()) for r in rows]
    assert seen["step"] == kernel.candle_s == 300
    assert seen["backfilled"] == 288 + 24 and seen["catch_up"][0]["detail"]["source"] == "lake+rest"
    assert seen["candles"] == len(candles)
    # One decision per live 5m close, none in between: the warm-up filled the window already.
    assert opens == [int(t.timestamp()) for t in live["ts"]]
    for row in rows:
        candle, decided = pd.Timestamp(row["candle_ts"]), pd.Timestamp(row["decided_at"])
        assert decided - candle == pd.Timedelta(minutes=5)
        assert pd.Timestamp(row["outcome_due"]) - decided == pd.Timedelta(minutes=10)  # 2 x 5m
    assert sum(r["actual_outcome"] is not None for r in rows) == len(rows) - 2  # the last two wait
    masks = np.stack(batcher.masks)  # (decisions, timeframes, window, 30)
    assert masks.shape == (len(rows), 3, 4, BLOCK)
    assert not masks[:, 0].any()  # the 1m block: no 1m candles, never valid
    assert masks[:, 1, :, 3].all() and masks[:, 2, :, 3].any()  # the 5m and 15m candles' body
    assert seen["returns"] == len(candles) - 1 and seen["fitted"]  # a 5m return per 5m candle


def test_the_replay_runner_decides_12_hours_of_5m_candles_once_per_close(tmp_path: Path) -> None:
    candles = _eth(144)
    settings = _settings(tmp_path)
    version = make_5m_bundle(settings.models_root)
    start = epoch_seconds(candles["ts"].iloc[0])
    recorded = Recorded(candles={PAIR: candles}, timeframe="5m")

    summary = asyncio.run(replay(settings, recorded, start=start, model_version=version, auto_trading=False))

    ledger = Ledger(settings.resolved_database_url)
    rows = ledger.predictions(limit=1000).items
    ledger.close()
    assert summary.errors == {} and summary.candles == 144
    assert summary.predictions == len(rows) == 144 - 3  # from the fourth candle on: a window of 4
    opens = sorted(int(pd.Timestamp(r["candle_ts"]).timestamp()) for r in rows)
    assert opens == [int(t.timestamp()) for t in candles["ts"].iloc[3:]]
    assert all(pd.Timestamp(r["decided_at"]) - pd.Timestamp(r["candle_ts"]) == pd.Timedelta(minutes=5) for r in rows)


def _kernel(home: Path, five: bool, clock: Clock | None = None) -> Kernel:
    """A kernel on an ACTIVE 1m or 5m model; on the default clock (one that follows the data and
    has none yet) no timer runs, so nothing polls the registry behind the test's back."""
    settings = _settings(home, live_candles="trades")
    if five:
        make_5m_bundle(settings.models_root)
    else:
        make_bundle(settings.models_root)
    return in_process(settings, clock=clock)


@pytest.mark.parametrize("five", [False, True])
def test_a_model_of_another_base_is_refused_while_the_engine_runs(tmp_path: Path, five: bool) -> None:
    kernel = _kernel(tmp_path, five)
    registry = Registry(kernel.settings.models_root)

    async def run() -> tuple[str | None, str | None, list[dict[str, Any]], int]:
        await kernel.start(connect=False)
        first = kernel.model_version
        root = kernel.settings.models_root
        other = make_bundle(root, seed=5, promote=False) if five else make_5m_bundle(root, seed=5, promote=False)
        registry.promote(other, "another base")
        await kernel._reload_model()
        await kernel._reload_model()  # refused once, tried once
        refused = kernel.ledger.events(kind="MODEL_REFUSED").items
        step = kernel.states[PAIR].step
        now = kernel.model_version
        await kernel.close()
        return first, now, refused, step

    first, now, refused, step = asyncio.run(run())
    assert now == first  # the model that started it goes on deciding
    assert step == (300 if five else 60)
    assert len(refused) == 1
    reason = refused[0]["detail"]["reason"]
    assert f"decides on {'1m' if five else '5m'} candles" in reason
    assert f"this engine's pairs run on {'5m' if five else '1m'} candles" in reason


def test_a_5m_pair_is_fresh_for_two_candles(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, five=True, clock=LiveClock())
    seen: dict[str, str] = {}

    async def run() -> None:
        await kernel.start(connect=False)
        state = kernel.states[PAIR]
        for age in (400, 700):  # seconds since its last candle closed
            state.last_ts = int(time.time()) - 300 - age
            seen[str(age)] = kernel.health_checks()["candles_fresh"]
        await kernel.close()

    asyncio.run(run())
    assert seen["400"] == ""  # past the 300 s setting, within two 5m candles
    assert seen["700"].startswith(f"last candle older than 600 s: {PAIR} 7")


def test_a_5m_kernel_builds_its_candles_from_trades_after_catching_up(tmp_path: Path) -> None:
    trades = load_recorded(SAMPLE, ["XRP-ETH"], timeframe="5m").trades["XRPETH"]
    trades = trades.loc[trades["ts"] < trades["ts"].iloc[0] + pd.Timedelta(hours=8)].reset_index(drop=True)
    start = epoch_seconds(trades["ts"].iloc[0]) + 3600  # an hour of history for the catch-up
    settings = live_settings(tmp_path, live_pairs=("XRPETH",), live_candles="trades")
    make_5m_bundle(settings.models_root)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    clock = TestClock(start_s=start)
    client = ReplayDataClient(Recorded(trades={"XRPETH": trades}, timeframe="5m"), clock, start=start)
    kernel = Kernel(settings, ledger, Registry(settings.models_root), clock, client, lockstep=True, health=False)

    async def run() -> tuple[list[Bar], list[dict[str, Any]]]:
        await kernel.start(connect=False)
        await client.run(kernel.pairs, kernel.on_event)
        await kernel.drain()
        bars, rows = list(kernel.states["XRPETH"].recent), kernel.ledger.predictions(limit=1000).items
        await kernel.close()
        return bars, rows

    bars, rows = asyncio.run(run())
    end = pd.Timestamp(trades["ts"].iloc[-1]).ceil("5min")
    batch = trades_to_candles(validate_trades(trades, "sample"), M5, end)
    # The candle under way at the start is incomplete on the stream (and the history has no
    # candles for a warm-up of days): the kernel's candles are the lake's from the cut on.
    batch = batch.loc[batch["ts"] >= pd.Timestamp(start - start % 300 + 300, unit="s", tz="UTC")]
    assert [b.ts for b in bars] == [int(t.timestamp()) for t in batch["ts"]]
    assert [b.close for b in bars] == batch["close"].tolist()
    opens = {int(pd.Timestamp(r["candle_ts"]).timestamp()) for r in rows}
    assert len(opens) == len(rows) > 40 and all(t % 300 == 0 and t + 300 > start for t in opens)
