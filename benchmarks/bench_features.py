"""Feature computation: batch over a year, streaming per candle, and the design's approach.

Input: the real BTC-PERP 1m month (data/sample) tiled end to end into one gap-free year
(525,600 candles; the seams are price jumps, which changes no cost measured here).

- batch: 1m candles -> 5m/15m -> the three 30-feature blocks -> the 90-vector at every
  1m close, as the `features` asset computes it (resampling reported separately).
- streaming: `StreamingFeatures.update` per closed 1m candle over the first 100,000 candles:
  aggregation to 5m/15m, the blocks that closed, the 90-vector. Candles are built as `Bar`s
  beforehand (that is the exchange adapter's work, not the features'). Three passes, the
  median one (by p99) reported.
- design: the Helios V3 design's approach (section 5.1): for each new candle, recompute every
  timeframe's features with pandas from its last 100 candles; on 300 candles.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helios_core.candles import resample, to_bars, validate_candles
from helios_core.features.batch import block_features
from helios_core.features.multi import StreamingFeatures, assemble
from helios_core.features.streaming import Bar
from helios_core.timeframes import Timeframe

REPO = Path(__file__).resolve().parents[1]
MINUTES_IN_YEAR = 365 * 24 * 60
STREAM_CANDLES = 100_000
DESIGN_CANDLES = 300
M1, M5, M15 = (Timeframe.parse(t) for t in ("1m", "5m", "15m"))


def tiled_year() -> pd.DataFrame:
    month = pd.read_parquet(REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet")
    frame = pd.concat([month] * -(-MINUTES_IN_YEAR // len(month)), ignore_index=True).head(MINUTES_IN_YEAR)
    frame["ts"] = pd.date_range("2023-01-01", periods=MINUTES_IN_YEAR, freq="1min", tz="UTC")
    return validate_candles(frame, M1, "tiled BTC-PERP year")


def batch(candles: pd.DataFrame) -> dict[str, float]:
    started = time.perf_counter()
    end, start = candles["ts"].iloc[-1] + M1.duration, candles["ts"].iloc[0]
    frames = {"1m": candles, "5m": resample(candles, M1, M5, end, start), "15m": resample(candles, M1, M15, end, start)}
    resampled = time.perf_counter()
    blocks = {tf: (f["ts"], block_features(f, Timeframe.parse(tf))) for tf, f in frames.items()}
    vectors = assemble(blocks, candles["ts"] + M1.duration)
    done = time.perf_counter()
    if vectors.shape != (len(candles), 90):
        raise RuntimeError(f"expected {len(candles)} x 90 vectors, got {vectors.shape}")
    return {"resample_s": resampled - started, "features_s": done - resampled}


def streaming(bars: list[Bar]) -> tuple[np.ndarray, np.ndarray]:
    features = StreamingFeatures()
    latency = np.empty(len(bars))
    clock = time.perf_counter_ns
    for i, bar in enumerate(bars):
        t0 = clock()
        features.update(bar)
        latency[i] = clock() - t0
    closes_15m = np.array([(b.ts + 60) % 900 == 0 for b in bars])
    return latency / 1000.0, closes_15m


def design(candles: pd.DataFrame) -> np.ndarray:
    """Per new 1m candle: last 100 candles of each timeframe -> pandas features, as in the design."""
    end_all = candles["ts"].iloc[-1] + M1.duration
    higher = {tf: resample(candles, M1, tf, end_all, candles["ts"].iloc[0]) for tf in (M5, M15)}
    first = 100 * 15
    latency = []
    for i in range(first, first + DESIGN_CANDLES):
        t = candles["ts"].iloc[i] + M1.duration
        t0 = time.perf_counter_ns()
        block_features(candles.iloc[i - 99 : i + 1], M1)
        for tf, frame in higher.items():
            closed = frame.loc[frame["ts"] + tf.duration <= t].tail(100)
            block_features(closed, tf)
        latency.append(time.perf_counter_ns() - t0)
    return np.array(latency) / 1000.0


def main() -> None:
    candles = tiled_year()
    gc.collect()
    timings = batch(candles)
    rows = len(candles)
    bars = to_bars(candles.head(STREAM_CANDLES))
    # Three passes; the one with the median p99 is reported, so one burst of work from
    # another process on this shared 2-core machine neither sinks nor flatters the figure.
    passes = sorted((streaming(bars) for _ in range(3)), key=lambda run: float(np.percentile(run[0], 99)))
    latency, at_15m = passes[1]
    old = design(candles)
    p50, p99 = np.percentile(latency, [50, 99])
    figures = {
        "benchmark": "bench_features",
        "input": f"BTC-PERP 1m month tiled to one year: {rows} candles",
        "batch_resample_s": round(timings["resample_s"], 3),
        "batch_features_s": round(timings["features_s"], 3),
        "batch_features_rows_per_s": round(rows / timings["features_s"]),
        "batch_target_s": 5,
        "stream_candles": len(bars),
        "stream_p50_us": round(float(p50), 1),
        "stream_p99_us": round(float(p99), 1),
        "stream_p99_us_at_15m_close": round(float(np.percentile(latency[at_15m], 99)), 1),
        "stream_max_us": round(float(latency.max()), 1),
        "stream_target_p99_us": 50,
        "design_candles": DESIGN_CANDLES,
        "design_p50_us": round(float(np.percentile(old, 50)), 1),
        "design_p95_us": round(float(np.percentile(old, 95)), 1),
        "design_budget_p95_us": 50_000,
        "design_over_stream_p50": round(float(np.percentile(old, 50) / p50), 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    print(f"batch: resample {timings['resample_s']:.2f} s, 90 features {timings['features_s']:.2f} s ({rows:,} rows)")
    print(f"streaming ({len(bars):,} candles): p50 {p50:.1f} us, p99 {p99:.1f} us")
    design_p50, design_p95 = figures["design_p50_us"], figures["design_p95_us"]
    print(f"design approach ({DESIGN_CANDLES} candles): p50 {design_p50:.0f} us, p95 {design_p95:.0f} us")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
