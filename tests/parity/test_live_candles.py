"""The live candle builder against the lake's batch builder on the same real trades."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd

from helios_core.bars import CandleBuilder
from helios_core.candles import trades_to_candles, validate_trades
from helios_core.features.streaming import Bar
from helios_core.market import Bucket, Disconnected, Reconnected, TradeTick
from helios_core.timeframes import Timeframe
from helios_live.data.recorded import Recorded, epoch_seconds, timeline
from tests.conftest import sample
from tests.live_support import in_process, live_settings, make_bundle

ONE_MINUTE = Timeframe.parse("1m")


def _trades() -> pd.DataFrame:
    return sample("XRP-ETH_trades_2019-10.parquet")


def _stream(frame: pd.DataFrame) -> list[TradeTick]:
    ts = frame["ts"].to_numpy(dtype="datetime64[us]").astype("int64") / 1e6
    return [
        TradeTick("XRPETH", t, p, q, s == "BUY", str(i))
        for t, p, q, s, i in zip(ts, frame["price"], frame["quantity"], frame["side"], frame["trade_id"], strict=True)
    ]


def _frame(bars: list[Bar]) -> pd.DataFrame:
    out = pd.DataFrame([b[:8] for b in bars], columns=[*Bar._fields[:8]])
    out["ts"] = pd.to_datetime(out["ts"], unit="s", utc=True)
    return out


def test_candles_from_the_trade_stream_equal_the_batch_candles() -> None:
    trades = _trades()
    builder = CandleBuilder(grace_s=2.0)
    bars = [bar for t in _stream(trades) if (bar := builder.on_trade(t)) is not None]
    last = builder.advance(trades["ts"].iloc[-1].timestamp() + 120)
    bars += [last] if last else []
    end = pd.Timestamp(trades["ts"].iloc[-1]).ceil("1min")

    batch = trades_to_candles(validate_trades(trades, "sample"), ONE_MINUTE, end)
    live = _frame(bars)

    assert len(live) == len(batch) > 2000
    assert (live["ts"].to_numpy() == batch["ts"].to_numpy()).all()
    for column in ("open", "high", "low", "close", "trade_count"):
        assert (live[column].to_numpy() == batch[column].to_numpy(dtype=float)).all(), column
    # pandas sums with compensation, the builder plainly: equal to the last few bits
    np.testing.assert_allclose(live["volume"], batch["volume"], rtol=1e-12)
    np.testing.assert_allclose(live["buy_volume"], batch["buy_volume"].to_numpy(dtype=float), rtol=1e-12)
    assert builder.late == 0


def test_a_candle_closes_on_the_clock_after_the_grace_period() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.on_trade(TradeTick("P", 120.5, 10.0, 1.0, True, "a"))

    assert builder.advance(181.9) is None  # the minute ended at 180; trades may still be in flight
    bar = builder.advance(182.0)

    assert bar is not None and bar.ts == 120 and bar.close == 10.0


def test_a_late_trade_is_dropped_and_counted_never_amending_a_closed_candle() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.on_trade(TradeTick("P", 120.5, 10.0, 1.0, True, "a"))
    closed = builder.on_trade(TradeTick("P", 185.0, 11.0, 1.0, False, "b"))

    result = builder.on_trade(TradeTick("P", 150.0, 99.0, 5.0, True, "late"))

    assert closed is not None and closed.high == 10.0
    assert result is None and builder.late == 1


def test_a_quiet_minute_has_no_candle_and_trades_for_it_after_the_clock_are_late() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.advance(250.0)  # minutes up to 240 are final by the clock, with no trade in them

    result = builder.on_trade(TradeTick("P", 200.0, 10.0, 1.0, True, "x"))

    assert result is None and builder.late == 1 and builder.current is None


def test_bucket_updates_replace_each_other_and_the_last_one_is_the_candle() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.on_bucket(Bucket("P", 60, 60, 10, 10, 10, 10, 1))
    builder.on_bucket(Bucket("P", 60, 60, 10, 12, 9, 11, 3))

    bar = builder.on_bucket(Bucket("P", 120, 60, 11, 11, 11, 11, 1))

    assert bar is not None and (bar.ts, bar.high, bar.low, bar.close, bar.volume) == (60, 12, 9, 11, 3)
    assert np.isnan(bar.trade_count)


def test_recorded_candles_streamed_as_buckets_come_back_unchanged() -> None:
    candles = sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(500)
    starts = candles["ts"].to_numpy(dtype="datetime64[s]").astype("int64")
    builder = CandleBuilder()
    bars = []
    for start, row in zip(starts, candles.itertuples(), strict=True):
        bar = builder.on_bucket(Bucket("P", int(start), 60, row.open, row.high, row.low, row.close, row.volume))
        bars += [bar] if bar else []
    bars += [b] if (b := builder.advance(float(starts[-1]) + 200)) else []

    live = _frame(bars)

    assert len(live) == 500
    for column in ("open", "high", "low", "close", "volume"):
        assert (live[column].to_numpy() == candles[column].to_numpy()).all()


def test_the_kernel_candles_equal_the_batch_candles_across_a_dropped_connection(tmp_path: Path) -> None:
    """The stream drops for twenty minutes: the kernel misses those trades, catches up from the
    exchange's trade history (here the recording, as the simulator's REST API serves it), and
    its candles are still the lake's candles, none lost and none twice."""
    trades = _trades()
    start = trades["ts"].iloc[0].ceil("1min")
    replay = trades.loc[(trades["ts"] >= start) & (trades["ts"] < start + pd.Timedelta(hours=3))]
    recorded = Recorded(trades={"XRPETH": replay.reset_index(drop=True)})
    settings = live_settings(tmp_path, live_pairs=("XRPETH",), live_candles="trades")
    make_bundle(settings.models_root)
    kernel = in_process(settings, recorded=recorded)
    events = [t.event for t in timeline(recorded, start=epoch_seconds(start))]
    drop, back = start.timestamp() + 40 * 60, start.timestamp() + 60 * 60
    seen = [e for e in events if not drop <= _at(e) < back]  # a disconnected client misses these

    async def run() -> None:
        await kernel.start(connect=False)
        for event in seen:
            if _at(event) >= back and kernel.states["XRPETH"].catchup is None and kernel.client.stats.disconnects == 0:
                kernel.client.stats.disconnects += 1
                await kernel.on_event(Disconnected("dropped"))
                await kernel.on_event(Reconnected("again"))
            await kernel.on_event(event)
        await kernel.drain()
        await kernel.close()

    asyncio.run(run())
    state = kernel.states["XRPETH"]

    live = pd.DataFrame([b[:8] for b in state.recent], columns=list(Bar._fields[:8]))
    end = pd.Timestamp(int(live["ts"].iloc[-1]) + 60, unit="s", tz="UTC")
    batch = trades_to_candles(validate_trades(replay, "replay"), ONE_MINUTE, end)
    batch = batch.loc[batch["ts"] >= pd.Timestamp(int(live["ts"].iloc[0]), unit="s", tz="UTC")]
    assert len(live) == len(batch) > 60
    assert (live["ts"].to_numpy() == batch["ts"].astype("int64").to_numpy() // 10**9).all()
    for column in ("open", "high", "low", "close", "trade_count"):
        assert (live[column].to_numpy() == batch[column].to_numpy(dtype=float)).all(), column
    catch_ups = kernel.ledger.events(kind="CATCH_UP", limit=10).items[::-1]
    assert [c["detail"]["source"] for c in catch_ups] == ["none", "none+rest"]
    assert catch_ups[1]["detail"]["candles"] >= 15  # most of the 20 minutes came from the history


def _at(event: object) -> float:
    return float(getattr(event, "ts", 0.0))
