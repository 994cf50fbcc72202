"""The surveillance detectors' cost: per streaming update, per anomaly sample, and the batch twins
over a year of 1-minute data.

- deviation update: one `reference()` over 3 fresh quotes plus `DeviationTracker.update`, per
  call (perf_counter_ns), 20,000 calls after 2,000 of warm-up. The reference prices are the real
  BTC-PERP 1m closes (data below); the traded price deviates from them by a synthetic amount that
  wanders between 0 and 1.5 %, so readings cross every severity and onsets start and end.
- cascade update: one `CascadeDetector.add([liq])` plus `check(asset, now)`, a synthetic
  liquidation every 6 s (300 s window: ~50 in it), 20,000 calls after warm-up.
- anomaly score: one sample through ONNX with `helios_live.surveillance.anomaly.AnomalyModel`,
  the IsolationForest trained in-process by the Dagster asset's own `train_and_write` on the market
  statistics of the real BTC-PERP candles (20,000 complete rows), 5,000 samples after warm-up.
  `null` when that module or the training helper is missing.
- batch: `deviation_batch` + `cascade_batch` over one asset's year of 1-minute rows (525,600):
  the price is the real BTC-PERP 1m closes of January 2022 tiled to a year; the three reference
  columns are synthetic: close x (1 + N(0, 2e-4)) twice, and once more with 10 % of its rows
  missing (NaN), each quoted 0-60 s before the row; the liquidations are synthetic (one every
  ~2 minutes on average, in bursts), checked at every minute. Days per second = 365 / seconds.

Prints readable lines; the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helios_core.surveillance.cascade import CascadeDetector, cascade_batch  # noqa: E402
from helios_core.surveillance.deviation import (  # noqa: E402
    DeviationConfig,
    DeviationTracker,
    deviation_batch,
    reference,
)
from helios_core.surveillance.observations import Liquidation, Quote  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "candles" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
SAMPLE = REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
CANDLES = SHARED if SHARED.is_file() else SAMPLE
T0 = 1_640_995_200.0  # 2022-01-01T00:00:00Z
YEAR_ROWS = 525_600
CALLS, WARMUP = 20_000, 2_000


def candles() -> pd.DataFrame:
    return pd.read_parquet(CANDLES).sort_values("ts").reset_index(drop=True)


def percentiles(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns, dtype=float) / 1e3
    return {"p50_us": round(float(np.percentile(us, 50)), 2), "p99_us": round(float(np.percentile(us, 99)), 2)}


def deviation_update(closes: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    config = DeviationConfig()
    tracker = DeviationTracker(config)
    n = CALLS + WARMUP
    level = np.resize(closes, n)
    gap = np.abs(np.cumsum(rng.normal(0, 0.0005, n)))  # wanders: onsets start and end
    gap = np.minimum(gap % 0.03, 0.015)
    price = (level * (1 + gap)).tolist()
    rows = []
    for i in range(n):
        now = T0 + i
        rows.append((now, [Quote(v, "BTC", float(level[i]) * (1 + 1e-4 * j), now - 2.0) for j, v in enumerate("abc")]))
    times = []
    critical = 0
    for i, (now, quotes) in enumerate(rows):
        started = time.perf_counter_ns()
        reading = tracker.update("BTC", price[i], now, reference(quotes, now, config))
        elapsed = time.perf_counter_ns() - started
        if i >= WARMUP:
            times.append(elapsed)
            critical += reading.sustained
    return {**percentiles(times), "calls": len(times), "sustained_share": round(critical / len(times), 3)}


def cascade_update(rng: np.random.Generator) -> dict[str, float]:
    detector = CascadeDetector()
    n = CALLS + WARMUP
    sides = rng.random(n) < 0.8
    sizes = rng.uniform(0.5, 5.0, n)
    liqs = [
        Liquidation("hl", "BTC", "long" if sides[i] else "short", 40_000.0, float(sizes[i]), T0 + 6.0 * i, f"0x{i:x}")
        for i in range(n)
    ]
    times, in_window = [], []
    for i, liq in enumerate(liqs):
        started = time.perf_counter_ns()
        detector.add([liq])
        reading = detector.check("BTC", liq.ts)
        elapsed = time.perf_counter_ns() - started
        if i >= WARMUP:
            times.append(elapsed)
            in_window.append(reading.count)
    return {**percentiles(times), "calls": len(times), "window_mean": round(float(np.mean(in_window)), 1)}


def anomaly_score(frame: pd.DataFrame) -> tuple[dict[str, float] | None, str]:
    try:
        from helios_core.surveillance.anomaly import complete_rows, market_stats_batch
        from helios_dagster.defs.surveillance.anomaly import TrainingData, train_and_write
        from helios_live.surveillance.anomaly import AnomalyModel
    except ImportError as exc:
        return None, f"anomaly scorer unavailable: {exc}"
    matrix = complete_rows(market_stats_batch(frame))
    training = matrix[:20_000]
    day = frame["ts"].iloc[0].date()
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        _, directory = train_and_write(TrainingData(training, ("BTC-PERP",), (day, day)), Path(home), datetime.now(UTC))
        how = "trained by train_and_write (the asset's own steps and parity rule)"
        train_s = time.perf_counter() - started
        model = AnomalyModel.load(directory)
        if model is None:
            return None, "the trained model directory did not load"
        samples = matrix[-5_500:]
        times = []
        for i, vector in enumerate(samples):
            started_ns = time.perf_counter_ns()
            model.score(vector)
            elapsed = time.perf_counter_ns() - started_ns
            if i >= 500:
                times.append(elapsed)
    meta = model.meta
    row = {**percentiles(times), "calls": len(times), "train_s": round(train_s, 2), "rows": meta.rows}
    note = f"{how}: {meta.rows} rows in {train_s:.1f} s, ONNX parity {meta.parity_max_abs_difference:.2g}"
    return row, note


def year_of_rows(closes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ts = T0 + 60.0 * np.arange(YEAR_ROWS)
    price = np.resize(closes, YEAR_ROWS)
    ref_price = price[:, None] * (1 + rng.normal(0, 2e-4, (YEAR_ROWS, 3)))
    ref_price[rng.random(YEAR_ROWS) < 0.1, 2] = np.nan
    ref_ts = ts[:, None] - rng.uniform(0, 60, (YEAR_ROWS, 3))
    ref_ts[np.isnan(ref_price)] = np.nan
    count = YEAR_ROWS // 2
    burst = rng.integers(0, YEAR_ROWS, count // 10)  # a tenth of the bursts' starts, ten fills each
    liq_ts = np.sort(ts[np.repeat(burst, 10)] + rng.uniform(0, 120, count // 10 * 10))
    return {
        "ts": ts,
        "price": price,
        "ref_price": ref_price,
        "ref_ts": ref_ts,
        "liq_ts": liq_ts,
        "liq_long": rng.random(len(liq_ts)) < 0.7,
        "liq_notional": rng.lognormal(np.log(30_000), 1.0, len(liq_ts)),
    }


def batch(closes: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    data = year_of_rows(closes, rng)
    started = time.perf_counter()
    readings = deviation_batch(data["ts"], data["price"], data["ref_price"], data["ref_ts"])
    middle = time.perf_counter()
    counts = cascade_batch(data["liq_ts"], data["liq_long"], data["liq_notional"], data["ts"])
    ended = time.perf_counter()
    total = ended - started
    return {
        "rows": YEAR_ROWS,
        "liquidations": len(data["liq_ts"]),
        "deviation_s": round(middle - started, 3),
        "cascade_s": round(ended - middle, 3),
        "total_s": round(total, 3),
        "days_per_s": round(365.0 / total, 1),
        "warning_rows": int(np.count_nonzero(readings.severity)),
        "checks": len(counts),
    }


def main() -> None:
    rng = np.random.default_rng(7)
    frame = candles()
    closes = frame["close"].to_numpy(dtype=float)
    print(f"data: {CANDLES.relative_to(REPO.parent)} ({len(frame)} 1m candles)")

    dev = deviation_update(closes, rng)
    print(
        f"deviation: reference() over 3 quotes + update: p50 {dev['p50_us']} us, p99 {dev['p99_us']} us"
        f" ({dev['calls']} calls, {dev['sustained_share']} of them sustained)"
    )
    cas = cascade_update(rng)
    print(
        f"cascade: add([liq]) + check(): p50 {cas['p50_us']} us, p99 {cas['p99_us']} us"
        f" ({cas['calls']} calls, {cas['window_mean']} liquidations in the window on average)"
    )
    anomaly, note = anomaly_score(frame)
    if anomaly is None:
        print(f"anomaly: not measured ({note})")
    else:
        print(f"anomaly: one sample through ONNX: p50 {anomaly['p50_us']} us, p99 {anomaly['p99_us']} us ({note})")
    year = batch(closes, rng)
    print(
        f"batch: a year of 1m rows ({year['rows']}, {year['liquidations']} liquidations): deviation_batch"
        f" {year['deviation_s']} s + cascade_batch {year['cascade_s']} s = {year['days_per_s']} days/s"
    )

    figures = {
        "deviation_update_p99_us": dev["p99_us"],
        "cascade_update_p99_us": cas["p99_us"],
        "anomaly_score_p99_us": anomaly["p99_us"] if anomaly else None,
        "batch_days_per_s": year["days_per_s"],
        "deviation_update_p50_us": dev["p50_us"],
        "cascade_update_p50_us": cas["p50_us"],
        "anomaly_score_p50_us": anomaly["p50_us"] if anomaly else None,
        "batch_deviation_s": year["deviation_s"],
        "batch_cascade_s": year["cascade_s"],
        "anomaly_note": note,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
