"""A year of 5m decisions for 3 pairs through the backtester: the kernel under the TestClock, the
simulated exchange filling at the next candle's open, a ledger of its own, then the metrics,
the baselines (buy-and-hold, 50 random-entry draws) and the report.

Input: TILED sample data, said so: the 20 days of real Binance 5m candles of ETH-BTC, LTC-BTC
and XMR-BTC (data/sample, 2018-01-10 .. 2018-01-30) repeated end to end until they span 4 days
of warm-up and `--days` (365) of backtest; each copy is scaled to start at the previous copy's
last close and moved on by the span, so the series has no jump and no overlap, and the real
gaps (XMR-BTC's two missing candles) repeat with it. Model: an untrained `small` network of the
demo's shape (window 16) that leans to BUY, base timeframe 5m (inference costs the same whatever
the weights); its confidence floor 0.40 so that orders, fills and exits are exercised.

Timed from the backtest's call to its return (ledger migration, model load, warm-up, the
decisions, the baselines and the report included); the backtest's own split is printed too.
The last line is one JSON object: `pairs`, `decisions`, `seconds`, `decisions_per_s`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helios_live.backtest.backtester import Market  # noqa: E402 -- after the path set-up above
from helios_live.backtest.run import evaluate, run_backtest  # noqa: E402
from helios_live.settings import HeliosSettings  # noqa: E402
from tests.live_support import make_bundle  # noqa: E402

FILES = {"ETHBTC": "ETH-BTC_5m_2018-01.parquet", "LTCBTC": "LTC-BTC_5m_2018-01.parquet",
         "XMRBTC": "XMR-BTC_5m_2018-01.parquet"}  # fmt: skip
WARMUP_DAYS = 4
STEP = pd.Timedelta(minutes=5)


def tiled(frame: pd.DataFrame, span: pd.Timedelta) -> pd.DataFrame:
    """`frame` repeated until it covers `span`, each copy scaled to continue the last close."""
    frame = frame.sort_values("ts").reset_index(drop=True)
    length = frame["ts"].iloc[-1] - frame["ts"].iloc[0] + STEP
    copies, scale, shift = [], 1.0, pd.Timedelta(0)
    prices = ["open", "high", "low", "close"]
    while shift < span:
        copy = frame.copy()
        copy[prices] = copy[prices] * scale
        copy["ts"] = copy["ts"] + shift
        copies.append(copy)
        scale *= frame["close"].iloc[-1] / frame["open"].iloc[0]
        shift += length
    out = pd.concat(copies, ignore_index=True)
    return out.loc[out["ts"] < out["ts"].iloc[0] + span].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of backtest after the warm-up")
    args = parser.parse_args()
    span = pd.Timedelta(days=WARMUP_DAYS + args.days)
    base = {pair: tiled(pd.read_parquet(REPO / "data" / "sample" / name), span) for pair, name in FILES.items()}
    first = max(f["ts"].iloc[0] for f in base.values()).to_pydatetime()
    start, end = first + timedelta(days=WARMUP_DAYS), first + span.to_pytimedelta()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = HeliosSettings(
            home=home, live_pairs=tuple(FILES), live_min_confidence=0.40, live_warmup_days=WARMUP_DAYS,
            live_autostart=False,
        )  # fmt: skip
        version = make_bundle(settings.models_root, window=16, lean=0, base="5m")
        print(f"tiled sample data: {', '.join(FILES.values())} to {span.days} days; backtest {start} .. {end}")
        began = time.perf_counter()
        result = run_backtest(
            settings, model_version=version, pairs=tuple(FILES), start=start, end=end, out_dir=home / "run",
            market=Market("5m", base), progress=print,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        simulation, overall = result.simulation, result.report["metrics"]["overall"]
        again = time.perf_counter()
        evaluate(settings, simulation, Market("5m", base), version, start.timestamp(), end.timestamp(), seed=0, runs=50)
        evaluation = time.perf_counter() - again
        print(f"of which the metrics, baselines and report figures: {evaluation:.1f} s (timed again on their own)")
        print(f"machine: {platform.machine()}, {platform.python_version()}")
        rate = simulation.decisions / seconds
        errors = simulation.errors or "none"
        print(f"{simulation.decisions:,} decisions, {overall['trades']} trades, in {seconds:.1f} s = {rate:,.0f}/s")
        print(f"errors: {errors}")
        print(f"verdict: {result.report['verdict']['summary']}")
        figures = {"pairs": len(FILES), "decisions": simulation.decisions, "seconds": round(seconds, 2),
                   "decisions_per_s": round(simulation.decisions / seconds, 1)}  # fmt: skip
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
