"""Tier 5 allocation's cost: one optimisation of the target weights, and performance attribution
over 90 days, end to end (ledger + lake, what the REST endpoint runs) and its pure core alone.

- optimise: one `helios_dagster.allocation.optimise.allocate(data, settings.allocation, now)` per
  call (perf_counter_ns), 10 pairs, 90 days of daily returns, the defaults of
  `helios_live.settings.AllocationSettings` (max_sharpe, Ledoit-Wolf covariance, volume-proxy
  prior, Black-Litterman with Idzorek's confidences, cap 0.40, the turnover-cost rule against the
  targets in force); 200 calls after 10 of warm-up. The inputs are SYNTHETIC: there are not 10
  pairs x 90 days of real daily data in ../shared/data. 150 days of daily closes per pair from a
  seeded numpy generator: a common factor N(0, 2.5 %) times a beta in [0.6, 1.4] plus an
  idiosyncratic N(0, 3 %) (daily volatility ~3-4.5 %), with a drift of 0 to +0.3 %/day (half the
  pairs above the daily risk-free rate); daily quote volumes lognormal, a different level per pair.
  Each call reads a different 91-day window of the 150 (the window moves one day per call,
  cycling), views for all 10 pairs (expected returns spread evenly over -1 %..+1 %/day and
  confidences over 0.1..0.9, assigned to the pairs at random once, then jittered every call by
  N(0, 0.1 %) and +-0.05, kept within those ranges) and equal-weight targets in force (so the
  turnover-cost rule runs): nothing repeats between consecutive calls. The prior is market-implied
  (volume weights x covariance), so it is the positive views that give max_sharpe a portfolio above
  the risk-free rate; with views drawn at random in +-1 % instead, about 1 call in 12 had none and
  fell back. It prints how many calls ended in a fallback and the methods seen.
- attribution: one `helios_live.allocation.attribution.attribution(ledger, lake, start, end,
  "equal", universe=the 10 pairs, capital=1,000,000)` over 90 UTC days (the REST endpoint's
  default benchmark), best and median of 3 calls; days per second = 90 / seconds. It reads a
  SQLite ledger and a Parquet lake built in a temporary directory (setup, timed and printed, not
  measured): 1m candles for 10 pairs over the 91 days it needs (the day before the window gives
  the first day's starting price), made from the REAL BTC-PERP 1m candles of January 2022
  (data/sample or ../shared/data): their 1-minute log returns tiled to 91 days, each pair starting
  at its own offset in them and at its own price level, high/low/volume from the same real rows
  scaled to the pair (trade_count and buy_volume unknown, as a source without them leaves them).
  The trading history is SYNTHETIC: 3 positions per pair per day (2,700 in all), long or short,
  opened at a random minute at that minute's close, closed 1-30 hours later (some overnight, so
  days start with holdings; those that would outlive the window stay open), 1-4 % of the capital
  each, the 0.35 % taker fee both ways, written through `Ledger.write` as opens and closes with
  orders and fills (one call per day, with an hourly PERIODIC equity snapshot). The volume
  benchmark is timed once as well.
- attribution core: `helios_core.allocation.attribution.attribute_day` for each of the 90 days
  plus `link`, on `PairDay` inputs precomputed from the same ledger and prices (checked to give
  the end-to-end call's returns); median and best over many repeats, days per second likewise.

Prints readable lines; the last line is one JSON object.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helios_core.allocation.attribution import (  # noqa: E402
    PairDay,
    WindowAttribution,
    attribute_day,
    equal_weights,
    link,
    pair_day,
)
from helios_core.allocation.data import AllocationData  # noqa: E402
from helios_core.allocation.targets import Targets  # noqa: E402
from helios_core.allocation.views import View  # noqa: E402
from helios_core.trading.account import PortfolioSnapshot  # noqa: E402
from helios_core.trading.enums import (  # noqa: E402
    CloseReason,
    OrderPurpose,
    OrderStatus,
    PositionSide,
    PositionStatus,
    TradingMode,
)
from helios_core.trading.orders import Fill, Order, OrderIntent  # noqa: E402
from helios_core.trading.position import Execution, Position  # noqa: E402
from helios_dagster.allocation.optimise import allocate  # noqa: E402
from helios_live.allocation.attribution import Holdings, attribution, fills  # noqa: E402
from helios_live.data.lake import Lake  # noqa: E402
from helios_live.ledger import Ledger  # noqa: E402
from helios_live.settings import AllocationSettings  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "candles" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
SAMPLE = REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
CANDLES = SHARED if SHARED.is_file() else SAMPLE
PAIRS = ("ADAZAR", "AVAXZAR", "BTCZAR", "DOGEZAR", "DOTZAR", "ETHZAR", "LINKZAR", "LTCZAR", "SOLZAR", "XRPZAR")
LEVELS = (8.0, 300.0, 1_000_000.0, 1.5, 90.0, 50_000.0, 200.0, 1_500.0, 2_500.0, 10.0)  # ZAR, per pair
DAYS = 90
SERIES_DAYS = 150
WARMUP, CALLS = 10, 200
START = date(2026, 1, 1)  # the attribution window: START .. START + 89
CAPITAL = 1_000_000.0
FEE = 0.0035
PER_DAY = 3  # positions per pair per day
MINUTES = 1440


# --- optimise -------------------------------------------------------------------------------


def daily_market(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """150 days of correlated daily closes and quote volumes (synthetic, see the docstring)."""
    n = len(PAIRS)
    factor = rng.normal(0.0, 0.025, (SERIES_DAYS, 1))
    beta = rng.uniform(0.6, 1.4, n)
    drift = np.linspace(0.0, 0.003, n)[rng.permutation(n)]
    rets = drift + factor * beta + rng.normal(0.0, 0.03, (SERIES_DAYS, n))
    index = pd.date_range("2025-06-01", periods=SERIES_DAYS, freq="D", tz="UTC")
    closes = pd.DataFrame(np.asarray(LEVELS) * np.cumprod(1.0 + rets, axis=0), index=index, columns=list(PAIRS))
    level = rng.uniform(15.0, 19.0, n)  # ln of the mean daily quote volume, per pair
    volumes = pd.DataFrame(rng.lognormal(level, 0.5, (SERIES_DAYS, n)), index=index, columns=list(PAIRS))
    return closes, volumes


def optimise(rng: np.random.Generator) -> dict[str, object]:
    config = AllocationSettings()
    closes, volumes = daily_market(rng)
    vol = closes.pct_change().std().to_numpy()
    print(
        f"optimise: {len(PAIRS)} pairs, synthetic daily closes, vol {vol.min():.1%}..{vol.max():.1%}/day,"
        f" window {config.window_days} days moving over {SERIES_DAYS}; {config.objective}, cap {config.max_weight}"
    )
    logging.getLogger("helios_dagster.allocation.optimise").setLevel(logging.ERROR)  # fallbacks are counted below
    positions = SERIES_DAYS - (config.window_days + 1) + 1
    n = len(PAIRS)
    base_return = np.linspace(-0.01, 0.01, n)[rng.permutation(n)]  # the views each call jitters
    base_confidence = np.linspace(0.1, 0.9, n)[rng.permutation(n)]
    times: list[int] = []
    methods: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    fallbacks = kept = 0
    for i in range(WARMUP + CALLS):
        last = config.window_days + i % positions  # the row of the window's last close
        window = slice(last - config.window_days, last + 1)
        as_of = (closes.index[last] + pd.Timedelta(days=1, minutes=30)).to_pydatetime()
        expected = np.clip(base_return + rng.normal(0.0, 0.001, n), -0.01, 0.01)
        confidence = np.clip(base_confidence + rng.uniform(-0.05, 0.05, n), 0.1, 0.9)
        views = {p: View(p, float(expected[k]), float(confidence[k]), 288) for k, p in enumerate(PAIRS)}
        previous = Targets(dict.fromkeys(PAIRS, 1.0 / len(PAIRS)), as_of - timedelta(days=1),
                           as_of - timedelta(days=1), "black_litterman/max_sharpe")  # fmt: skip
        data = AllocationData(as_of, closes.iloc[window], volumes.iloc[window], views, previous)
        now = as_of + timedelta(minutes=1)
        started = time.perf_counter_ns()
        targets = allocate(data, config, now)
        elapsed = time.perf_counter_ns() - started
        if i >= WARMUP:
            times.append(elapsed)
            methods[targets.method] += 1
            kept += bool(targets.inputs.get("kept_previous"))
            if targets.fallback is not None:
                fallbacks += 1
                reasons[targets.fallback.split(" (")[0]] += 1
    ms = np.asarray(times, dtype=float) / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "calls": len(times),
        "fallbacks": fallbacks,
        "kept_previous": kept,
        "methods": dict(methods),
        "reasons": dict(reasons),
    }


# --- attribution: setup -------------------------------------------------------------------


def minute_series(frame: pd.DataFrame, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Each pair's 1m closes, highs, lows and base volumes over the 91 days (real BTC-PERP 1m log
    returns tiled from the pair's own offset, at the pair's price level)."""
    close = frame["close"].to_numpy(dtype=float)
    logret = np.diff(np.log(close))
    high_ratio = (frame["high"].to_numpy(dtype=float) / close)[1:]
    low_ratio = (frame["low"].to_numpy(dtype=float) / close)[1:]
    quote = frame["volume"].to_numpy(dtype=float)[1:]  # quote currency (USD) in the source
    rows = (DAYS + 1) * MINUTES
    out = {}
    for k, pair in enumerate(PAIRS):
        take = (np.arange(rows) + int(rng.integers(0, len(logret)))) % len(logret)
        closes = LEVELS[k] * np.exp(np.cumsum(logret[take]))
        share = 18.0 * float(rng.uniform(0.005, 0.05))  # the pair's ZAR quote volume per USD of BTC-PERP's
        out[pair] = {
            "close": closes,
            "high": closes * high_ratio[take],
            "low": closes * low_ratio[take],
            "volume": quote[take] * share / closes,  # base units: volume x close is the quote volume
        }
    return out


def build_lake(lake: Lake, series: dict[str, dict[str, np.ndarray]]) -> int:
    first = START - timedelta(days=1)
    written = 0
    for pair, s in series.items():
        for d in range(DAYS + 1):
            day = first + timedelta(days=d)
            rows = slice(d * MINUTES, (d + 1) * MINUTES)
            ts = pd.date_range(pd.Timestamp(day.isoformat(), tz="UTC"), periods=MINUTES, freq="min").astype(
                "datetime64[ns, UTC]"
            )
            c = s["close"][rows]
            opens = np.r_[s["close"][d * MINUTES - 1] if d else c[0], c[:-1]]
            frame = pd.DataFrame(
                {
                    "ts": ts,
                    "open": opens,
                    "high": np.maximum(s["high"][rows], np.maximum(opens, c)),
                    "low": np.minimum(s["low"][rows], np.minimum(opens, c)),
                    "close": c,
                    "volume": s["volume"][rows],
                    "trade_count": pd.array([pd.NA] * MINUTES, dtype="Int64"),
                    "buy_volume": np.full(MINUTES, np.nan),
                }
            )
            lake.write("candles", pair, "1m", day, frame, {"source": "bench_allocation (tiled BTC-PERP 1m)"})
            written += 1
    return written


def execution(position: Position, purpose: OrderPurpose, price: float, fee: float, at: datetime) -> Execution:
    side = position.side.entry if purpose is OrderPurpose.OPEN else position.side.exit
    cid = f"{position.key}-{'O' if purpose is OrderPurpose.OPEN else 'C'}"
    intent = OrderIntent(cid, position.key, position.pair, side, purpose, position.quantity, TradingMode.PAPER, at)
    fill = Fill(cid, price, position.quantity, fee, "TAKER", "BOOK", 1, at)
    return Execution(Order(intent, OrderStatus.FILLED, (fill,)), position)


def snapshot(at: datetime, equity: float) -> PortfolioSnapshot:
    return PortfolioSnapshot(at, equity, 0.0, 0.0, equity, equity, 0.0, equity, 0.0, 0, "PERIODIC")


def build_ledger(ledger: Ledger, series: dict[str, dict[str, np.ndarray]], rng: np.random.Generator) -> tuple[int, int]:
    """Positions opened and closed over the window, written one day at a time: that day's opens,
    its closes (of positions opened that day or before) and its hourly snapshots."""
    t0 = datetime(START.year, START.month, START.day, tzinfo=UTC)
    base = MINUTES  # the window's first minute in the series (day 0 of it is the day before)
    end = DAYS * MINUTES
    opens: dict[int, list[tuple[None, Execution]]] = {d: [] for d in range(DAYS)}
    closes: dict[int, list[Execution]] = {d: [] for d in range(DAYS)}
    realised: dict[int, float] = {}  # minute of a close: its P&L net of both fees
    positions = 0
    for pair, s in series.items():
        for d in range(DAYS):
            for j in range(PER_DAY):
                at = d * MINUTES + int(rng.integers(0, MINUTES))
                shut = at + int(rng.integers(60, 30 * 60))
                side = PositionSide.LONG if rng.random() < 0.55 else PositionSide.SHORT
                entry = float(s["close"][base + at])
                quantity = float(rng.uniform(0.01, 0.04)) * CAPITAL / entry
                open_at = t0 + timedelta(minutes=at)
                key = f"{pair}-{d}-{j}"
                position = Position(key, pair, side, PositionStatus.OPEN, quantity, entry, entry * quantity, 1.0, 1.0,
                                    1e9, open_at, open_at + timedelta(days=2), FEE * entry * quantity)  # fmt: skip
                opens[d].append((None, execution(position, OrderPurpose.OPEN, entry, position.entry_fee, open_at)))
                positions += 1
                if shut >= end:  # would outlive the window: still open at its end
                    continue
                exit_price = float(s["close"][base + shut])
                close_at = t0 + timedelta(minutes=shut)
                fee = FEE * exit_price * quantity
                sign = 1.0 if side is PositionSide.LONG else -1.0
                pnl = sign * quantity * (exit_price - entry) - position.entry_fee - fee
                done = Position(key, pair, side, PositionStatus.CLOSED, quantity, entry, entry * quantity, 1.0, 1.0,
                                1e9, open_at, open_at + timedelta(days=2), position.entry_fee, exit_price, close_at,
                                CloseReason.TIMEOUT, fee, pnl)  # fmt: skip
                closes[shut // MINUTES].append(execution(done, OrderPurpose.CLOSE, exit_price, fee, close_at))
                realised[shut] = realised.get(shut, 0.0) + pnl
    booked = np.zeros(end)
    for minute, pnl in realised.items():
        booked[minute] += pnl
    equity = CAPITAL + np.cumsum(booked)
    snapshots = 0
    for d in range(DAYS):
        hourly = [
            snapshot(t0 + timedelta(minutes=m), float(equity[m]))
            for m in range(d * MINUTES + 59, (d + 1) * MINUTES, 60)
        ]
        by_time = sorted(closes[d], key=lambda e: e.order.fills[0].filled_at)
        ledger.write(opens=sorted(opens[d], key=lambda o: o[1].order.fills[0].filled_at), closes=by_time,
                     snapshots=hourly)  # fmt: skip
        snapshots += len(hourly)
    return positions, snapshots


# --- attribution: measured ------------------------------------------------------------------


def core_inputs(ledger: Ledger, series: dict[str, dict[str, np.ndarray]]) -> list[tuple[date, list[PairDay]]]:
    """The same days' PairDay inputs, from the ledger's fills and the prices in memory (as the live
    module forms them: start price = the day before's last 1m close, equity = the latest snapshot)."""
    end = START + timedelta(days=DAYS - 1)
    holdings = Holdings(fills(ledger, datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)))
    curve = ledger.equity_curve()
    out = []
    weights = equal_weights(PAIRS)
    for d in range(DAYS):
        day = START + timedelta(days=d)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        before = [e for at, e in curve if at <= midnight]
        equity = before[-1] if before else CAPITAL
        traded = holdings.day(day)
        inputs = []
        for pair in PAIRS:
            p0 = float(series[pair]["close"][(d + 1) * MINUTES - 1])
            p1 = float(series[pair]["close"][(d + 2) * MINUTES - 1])
            opening, inside = traded.get(pair, (0.0, []))
            exposure, pnl = pair_day(opening, inside, p0, p1)
            inputs.append(PairDay(pair, exposure / equity, pnl / equity, p1 / p0 - 1.0, weights[pair]))
        out.append((day, inputs))
    return out


def run_core(inputs: list[tuple[date, list[PairDay]]]) -> WindowAttribution:
    return link(inputs[0][0], inputs[-1][0], [attribute_day(day, pairs) for day, pairs in inputs])


def attribution_bench(rng: np.random.Generator) -> dict[str, object]:
    frame = pd.read_parquet(CANDLES).sort_values("ts").reset_index(drop=True)
    print(f"attribution: data {CANDLES.relative_to(REPO.parent)} ({len(frame)} 1m candles), tiled to {DAYS + 1} days")
    with tempfile.TemporaryDirectory() as home:
        root = Path(home)
        started = time.perf_counter()
        series = minute_series(frame, rng)
        lake = Lake(root / "lake")
        files = build_lake(lake, series)
        lake_s = time.perf_counter() - started
        started = time.perf_counter()
        ledger = Ledger(f"sqlite:///{root / 'ledger.db'}")
        ledger.migrate()
        positions, snapshots = build_ledger(ledger, series, rng)
        ledger_s = time.perf_counter() - started
        fill_count = len(fills(ledger, datetime(2100, 1, 1, tzinfo=UTC)))
        print(
            f"setup: lake {files} day files of 1m candles ({len(PAIRS)} pairs x {DAYS + 1} days) in {lake_s:.1f} s;"
            f" ledger {positions} positions, {fill_count} fills, {snapshots} snapshots in {ledger_s:.1f} s (not timed)"
        )
        end = START + timedelta(days=DAYS - 1)
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            window = attribution(ledger, lake, START, end, "equal", universe=PAIRS, capital=CAPITAL)
            seconds.append(time.perf_counter() - started)
        if len(window.days) != DAYS or window.missing:
            raise SystemExit(f"attribution attributed {len(window.days)} days, missing {window.missing[:3]}")
        started = time.perf_counter()
        volume = attribution(ledger, lake, START, end, "volume", universe=PAIRS, capital=CAPITAL)
        volume_s = time.perf_counter() - started
        print(
            f"attribution end to end ({DAYS} days, equal benchmark): best {min(seconds):.2f} s, median"
            f" {float(np.median(seconds)):.2f} s = {DAYS / float(np.median(seconds)):.1f} days/s"
            f" (best {DAYS / min(seconds):.1f}); volume benchmark {volume_s:.2f} s = {DAYS / volume_s:.1f} days/s;"
            f" R_p {window.portfolio_return:+.4f}, R_b {window.benchmark_return:+.4f}, linking {window.linking}"
            f" ({len(volume.days)} days)"
        )

        inputs = core_inputs(ledger, series)
    core = run_core(inputs)
    if not (math.isclose(core.portfolio_return, window.portfolio_return, rel_tol=1e-9, abs_tol=1e-12)
            and math.isclose(core.benchmark_return, window.benchmark_return, rel_tol=1e-9, abs_tol=1e-12)):  # fmt: skip
        raise SystemExit(
            f"the core inputs do not reproduce the end-to-end call: R_p {core.portfolio_return} vs"
            f" {window.portfolio_return}, R_b {core.benchmark_return} vs {window.benchmark_return}"
        )
    core_times: list[int] = []
    budget = time.perf_counter() + 3.0
    while len(core_times) < 20 or (time.perf_counter() < budget and len(core_times) < 2_000):
        started_ns = time.perf_counter_ns()
        run_core(inputs)
        core_times.append(time.perf_counter_ns() - started_ns)
    core_s = np.asarray(core_times, dtype=float) / 1e9
    core_median, core_best = float(np.median(core_s)), float(core_s.min())
    print(
        f"attribution core: attribute_day x {DAYS} + link on precomputed PairDay ({len(PAIRS)} pairs):"
        f" median {core_median * 1e3:.2f} ms, best {core_best * 1e3:.2f} ms = {DAYS / core_median:,.0f} days/s"
        f" ({len(core_times)} repeats; same R_p and R_b as end to end)"
    )
    return {
        "days_per_s": round(DAYS / float(np.median(seconds)), 1),
        "best_days_per_s": round(DAYS / min(seconds), 1),
        "best_s": round(min(seconds), 3),
        "median_s": round(float(np.median(seconds)), 3),
        "volume_days_per_s": round(DAYS / volume_s, 1),
        "core_days_per_s": round(DAYS / core_median, 1),
        "core_best_days_per_s": round(DAYS / core_best, 1),
        "positions": positions,
        "fills": fill_count,
        "lake_setup_s": round(lake_s, 1),
        "ledger_setup_s": round(ledger_s, 1),
    }


def main() -> None:
    rng = np.random.default_rng(11)
    opt = optimise(rng)
    print(
        f"optimise: allocate(): p50 {opt['p50_ms']} ms, p99 {opt['p99_ms']} ms ({opt['calls']} calls);"
        f" fallbacks {opt['fallbacks']} {opt['reasons'] or ''}; kept the targets in force {opt['kept_previous']};"
        f" methods {opt['methods']}"
    )
    att = attribution_bench(rng)
    figures = {
        "pairs": len(PAIRS),
        "days": DAYS,
        "optimise_ms_p50": opt["p50_ms"],
        "optimise_ms_p99": opt["p99_ms"],
        "optimise_fallbacks": opt["fallbacks"],
        "attribution_days_per_s": att["days_per_s"],
        "attribution_core_days_per_s": att["core_days_per_s"],
        "optimise_calls": opt["calls"],
        "optimise_kept_previous": opt["kept_previous"],
        "optimise_methods": opt["methods"],
        "attribution_best_days_per_s": att["best_days_per_s"],
        "attribution_volume_days_per_s": att["volume_days_per_s"],
        "attribution_core_best_days_per_s": att["core_best_days_per_s"],
        "attribution_positions": att["positions"],
        "attribution_fills": att["fills"],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
