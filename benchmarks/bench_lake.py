"""One year of 1m candles for one pair through import -> lake -> 5m/15m, as Dagster runs it.

Input: the real BTC-PERP month (data/sample) tiled end to end, timestamps shifted so the
tiles form one gap-free year (2023-01-01 .. 2023-12-31, 525,600 candles). The seams
between tiles are price jumps, which costs nothing extra anywhere measured here.

Measured: the production path, `market_data` job in-process (raw_candles: read file,
validate, split into days, atomic Parquet writes; candles: read, resample to 1m/5m/15m,
write; then the three asset checks), timed per step from Dagster's own step stats. The
10 s target is for import -> lake -> resampled (raw_candles + candles); the checks and
the whole run's wall time are reported beside it.
Prints a table, and on its last line one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MINUTES_IN_YEAR = 365 * 24 * 60


def tiled_year(month: pd.DataFrame) -> pd.DataFrame:
    tiles = -(-MINUTES_IN_YEAR // len(month))
    frame = pd.concat([month] * tiles, ignore_index=True).head(MINUTES_IN_YEAR)
    frame["ts"] = pd.date_range("2023-01-01", periods=MINUTES_IN_YEAR, freq="1min", tz="UTC")
    return frame


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="helios-bench-") as tmp:
        run(Path(tmp))


def run(work: Path) -> None:
    os.environ.update(
        {"HELIOS_HOME": str(work / "home"), "HELIOS_PAIRS": "BTCPERP", "HELIOS_FILE_DIR": str(work / "in")}
    )
    (work / "in").mkdir()
    year = tiled_year(pd.read_parquet(REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"))
    year.to_parquet(work / "in" / "BTC-PERP_1m_bench.parquet")

    import dagster as dg

    from helios_dagster.resources import market_data_from
    from helios_dagster.runs import run_market_data
    from helios_live.settings import load_settings

    settings = load_settings()
    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    summary = run_market_data(
        settings, "BTCPERP", date(2023, 1, 1), date(2023, 12, 31), market_data_from(settings), instance, verbose=False
    )
    total = time.perf_counter() - started
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(summary.run_id)}
    rows = len(year)
    figures = {
        "benchmark": "bench_lake",
        "input": f"BTC-PERP 1m month tiled to one year: {rows} candles, 365 day partitions, one run",
        "rows": rows,
        "raw_candles_s": round(steps["raw_candles"], 3),
        "raw_candles_rows_per_s": round(rows / steps["raw_candles"]),
        "candles_s": round(steps["candles"], 3),
        "candles_rows_per_s": round(rows / steps["candles"]),
        "import_to_resampled_s": round(steps["raw_candles"] + steps["candles"], 3),
        "checks_s": round(sum(v for k, v in steps.items() if k.startswith("candles_candles_")), 3),
        "total_run_s": round(total, 3),
        "target_import_to_resampled_s": 10,
        "checks_passed": {c.name: c.passed for c in summary.checks},
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    for step, seconds in sorted(steps.items()):
        print(f"{step:<40} {seconds:8.2f} s  {rows / seconds:>12,.0f} rows/s")
    pipeline = steps["raw_candles"] + steps["candles"]
    print(f"{'import -> lake -> resampled (target 10 s)':<40} {pipeline:8.2f} s")
    print(f"{'whole run incl. checks (wall time)':<40} {total:8.2f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
