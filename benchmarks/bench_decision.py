"""The decision path with trading: candle close -> paper fill recorded in the ledger, 10 pairs;
the GARCH refit on 30 days of 5m returns; the per-return variance update.

- decision latency: the engine in-process as `helios live serve` runs it (minus the socket),
  10 pairs, a real small ONNX model with untrained weights, the pass-through approval, every
  GARCH model fitted beforehand on the pair's real 5m returns, the ledger on SQLite (WAL) and,
  if reachable, PostgreSQL. The trade tape and the two cases ("together": the ten closing
  trades of a minute handed over at once; "apart": each pair's minute on its own) are those of
  bench_stream.py. To make decisions trade, the untrained model leans to BUY (a bias on its
  output layer; the cost of inference does not depend on the weights) and positions time out
  after 60 s, so every minute a pair's position closes and the next decision may open another
  (the daily-loss and drawdown limits are raised to 99%: the fees would otherwise stop all
  trading within the hour). Only
  decisions that opened a position count: from the moment the closing trade is handed to the
  engine to the commit of the one transaction holding the prediction, its risk decision,
  portfolio check, order, fill, position and snapshot.
- refit: `helios_core.risk.garch.fit` on the 30 days of 5m log returns of BTC-PERP (data/sample),
  median of 5.
- update: `VarianceState.update` per return, in microseconds.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_stream import CLOSE_GRACE_S, PAIRS, each_case, kernel, milliseconds, replay, tape  # noqa: E402
from helios_core.risk.garch import VarianceState, fit  # noqa: E402
from helios_live.trading.volatility import INTERVAL_S  # noqa: E402
from tests.live_support import live_settings, make_bundle  # noqa: E402

BTC = REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"


def returns_5m() -> np.ndarray:
    candles = pd.read_parquet(BTC).set_index("ts")["close"]
    closes = candles.resample("5min", label="left", closed="left").last().dropna()
    return np.diff(np.log(closes.to_numpy()))[-30 * 288 :]


async def decision_run(frame: pd.DataFrame, url: str | None, home: Path, together: bool) -> dict[str, float]:
    settings = live_settings(
        home,
        live_pairs=PAIRS,
        live_candles="trades",
        model_window=16,
        database_url=url or "",
        risk_max_hold_s=60.0,
        # fees and spread on a position a minute eat 5% of the account within the hour: the
        # daily-loss and drawdown limits would then deny every entry, and there would be no fill
        # left to time (each limit is still checked on every decision)
        risk_daily_loss=0.99,
        risk_max_drawdown=0.99,
        risk_refit_s=1e9,  # no refit during the run
        live_close_grace_s=CLOSE_GRACE_S,  # every candle closes on its pair's next trade (bench_stream)
    )
    make_bundle(settings.models_root, window=16, lean=0)
    engine = kernel(settings)
    model = fit(returns_5m(), INTERVAL_S)

    def install(minute: int) -> None:
        if minute == 1:  # caught up (no lake here): the volatility model a 30-day history would give
            for vol in engine.desk.trader.vol.values():
                vol.install(model, vol.total)

    await engine.start(connect=False)
    await engine.set_auto_trading(True)
    await replay(engine, frame, together, install)
    samples = list(engine.desk.fill_latencies)
    decisions = sum(s.predictions for s in engine.states.values())
    await engine.close()
    engine.ledger.close()
    if not samples:
        raise SystemExit("no decision opened a position: the benchmark measured nothing")
    return {"decisions": decisions, "fills": len(samples), **milliseconds(samples)}


def refit_and_update() -> dict[str, float]:
    returns = returns_5m()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        model = fit(returns, INTERVAL_S)
        times.append(time.perf_counter() - started)
    state = VarianceState.from_model(model)
    values = returns[:1000].tolist()
    loops = 200
    seconds = timeit.timeit(lambda: [state.update(r) for r in values], number=loops)
    return {
        "returns": len(returns),
        "source": model.source,
        "alpha": round(model.alpha, 4),
        "beta": round(model.beta, 4),
        "refit_s_median": round(statistics.median(times), 4),
        "update_us": round(seconds / (loops * len(values)) * 1e6, 3),
    }


def main() -> None:
    frame = tape()
    figures: dict[str, object] = {"benchmark": "bench_decision", "pairs": len(PAIRS)}
    figures["garch"] = row = refit_and_update()
    print(
        f"GARCH(1,1) refit on {row['returns']} 5m returns: {row['refit_s_median']} s (median of 5, {row['source']});"
        f" variance update {row['update_us']} us per return"
    )
    for name, case, row in each_case(decision_run, frame):
        figures[f"decision_{name}_{case}"] = row
        print(
            f"close -> paper fill recorded, {name}, 10 pairs closing {case}: p50 {row['p50_ms']} ms,"
            f" p99 {row['p99_ms']} ms ({row['fills']} fills of {row['decisions']} decisions)"
        )
    figures["targets"] = {"trade_p99_ms": 5.0, "trade_pg_p99_ms": 10.0, "design_budget_ms": 2000.0}
    # The keys: ten pairs closing together, close -> fill committed.
    together = figures["decision_sqlite_together"]
    figures["trade_p50_ms"] = together["p50_ms"]  # type: ignore[index]
    figures["trade_p99_ms"] = together["p99_ms"]  # type: ignore[index]
    postgres = figures.get("decision_postgres_together")
    figures["trade_pg_p99_ms"] = postgres["p99_ms"] if postgres else None  # type: ignore[index]
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
