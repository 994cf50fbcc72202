"""The live candle builder against the lake's batch builder on the same real trades."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helios_core.candles import trades_to_candles, validate_trades
from helios_core.features.streaming import Bar
from helios_core.timeframes import Timeframe
from helios_live.stream.candles import CandleBuilder
from helios_live.stream.events import Bucket, Trade
from tests.conftest import sample

ONE_MINUTE = Timeframe.parse("1m")


def _trades() -> pd.DataFrame:
    return sample("XRP-ETH_trades_2019-10.parquet")


def _stream(frame: pd.DataFrame) -> list[Trade]:
    ts = frame["ts"].to_numpy(dtype="datetime64[us]").astype("int64") / 1e6
    return [
        Trade("XRPETH", t, p, q, s == "BUY", str(i))
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
    builder.on_trade(Trade("P", 120.5, 10.0, 1.0, True, "a"))

    assert builder.advance(181.9) is None  # the minute ended at 180; trades may still be in flight
    bar = builder.advance(182.0)

    assert bar is not None and bar.ts == 120 and bar.close == 10.0


def test_a_late_trade_is_dropped_and_counted_never_amending_a_closed_candle() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.on_trade(Trade("P", 120.5, 10.0, 1.0, True, "a"))
    closed = builder.on_trade(Trade("P", 185.0, 11.0, 1.0, False, "b"))

    result = builder.on_trade(Trade("P", 150.0, 99.0, 5.0, True, "late"))

    assert closed is not None and closed.high == 10.0
    assert result is None and builder.late == 1


def test_a_quiet_minute_has_no_candle_and_trades_for_it_after_the_clock_are_late() -> None:
    builder = CandleBuilder(grace_s=2.0)
    builder.advance(250.0)  # minutes up to 240 are final by the clock, with no trade in them

    result = builder.on_trade(Trade("P", 200.0, 10.0, 1.0, True, "x"))

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
