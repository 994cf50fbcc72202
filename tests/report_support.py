"""A realistic backtest report dict for the report tests: two pairs, 90 days of 4-hour candles
(540 points a series), 20 trades, three calendar months, ten calibration bins."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

START = datetime(2022, 1, 1, tzinfo=UTC)
END = datetime(2022, 4, 1, tzinfo=UTC)
STEP_S = 4 * 3600
CAPITAL = 10_000.0
PAIRS = ("BTCZAR", "ETHZAR")
OPENING = {"BTCZAR": 720_000.0, "ETHZAR": 58_000.0}


def backtest_report(pairs: tuple[str, ...] = PAIRS, trades_per_pair: int = 10, seed: int = 0) -> dict[str, Any]:
    """A report shaped as helios_core.evaluation builds it; figures consistent enough to look real."""
    rng = random.Random(seed)  # noqa: S311 -- made-up market data, not a secret
    t0, t1 = int(START.timestamp()), int(END.timestamp())
    t = list(range(t0, t1, STEP_S))
    closes = {pair: _walk(rng, OPENING.get(pair, 100.0), len(t)) for pair in pairs}
    trades = [trade for pair in pairs for trade in _trades(rng, pair, t, closes[pair], trades_per_pair)]
    trades.sort(key=lambda x: x["opened_at"])
    model = [CAPITAL + sum(x["pnl"] for x in trades if x["closed_at"] <= moment) for moment in t]
    hold = [CAPITAL * sum(closes[p][i] / closes[p][0] for p in pairs) / len(pairs) for i in range(len(t))]
    random_median = [CAPITAL * (1 + 0.0004 * math.sin(i / 17)) - 0.6 * i for i in range(len(t))]
    peak, dd = -math.inf, []
    for value in model:
        peak = max(peak, value)
        dd.append((peak - value) / peak)
    return {
        "title": "Backtest: helios-lgbm on BTCZAR and ETHZAR",
        "model": "helios-lgbm 2022.03.1",
        "pairs": list(pairs),
        "start": START.isoformat(),
        "end": END.isoformat(),
        "timeframe": "5m",
        "fill_model": {"taker_fee": 0.0035, "slippage_bps": 5.0, "fills": "next candle open"},
        "metrics": {
            "overall": _figures(model, dd, trades),
            "per_pair": {p: _figures(model, dd, [x for x in trades if x["pair"] == p]) for p in pairs},
        },
        "baselines": {
            "buy_and_hold": {**_figures(hold, [0.0], []), "trades": len(pairs), "sortino": None},
            "random_entry": {
                "runs": 50,
                "seed": 0,
                "median": {**_figures(random_median, [0.02], trades), "profit_factor": None},
                "p95": _figures([CAPITAL, CAPITAL * 1.031], [0.011], trades),
            },
        },
        "verdict": {
            "beats_buy_and_hold": False,
            "beats_random": False,
            "summary": "Total return -1.9% against buy-and-hold +4.2% and a random-entry median of -3.1%.",
        },
        "equity": {"t": t, "model": model, "buy_and_hold": hold, "random_median": random_median},
        "drawdown": {"t": t, "model": dd},
        "prices": {pair: {"t": t, "close": close} for pair, close in closes.items()},
        "trades": trades,
        "monthly_returns": _monthly(t, model),
        "calibration": _calibration(rng),
        "notes": ["Fees are VALR's taker fee; no funding payments are modelled."],
    }


def _walk(rng: random.Random, start: float, n: int) -> list[float]:
    out = [start]
    for _ in range(n - 1):
        out.append(out[-1] * math.exp(rng.gauss(0.0001, 0.012)))
    return out


def _trades(rng: random.Random, pair: str, t: list[int], close: list[float], n: int) -> list[dict[str, Any]]:
    out = []
    for i in sorted(rng.sample(range(4, len(t) - 30), n)):
        j = i + rng.randint(3, 24)
        side = rng.choice(("LONG", "SHORT"))
        quantity = 2_000.0 / close[i]
        fees = 0.0035 * quantity * (close[i] + close[j])
        gross = (close[j] - close[i]) * quantity * (1 if side == "LONG" else -1)
        out.append(
            {
                "pair": pair,
                "side": side,
                "opened_at": t[i],
                "closed_at": t[j],
                "entry_price": close[i],
                "exit_price": close[j],
                "pnl": gross - fees,
                "reason": rng.choice(("TAKE_PROFIT", "STOP_LOSS", "TIMEOUT")),
            }
        )
    return out


def _figures(equity: list[float], dd: list[float], trades: list[dict[str, Any]]) -> dict[str, Any]:
    wins = [x["pnl"] for x in trades if x["pnl"] > 0]
    losses = [-x["pnl"] for x in trades if x["pnl"] < 0]
    total = equity[-1] / equity[0] - 1
    return {
        "total_return": total,
        "cagr": (1 + total) ** (365 / 90) - 1,
        "sharpe": 0.42 if total > 0 else -0.37,
        "sortino": 0.61 if total > 0 else -0.48,
        "calmar": None,
        "max_drawdown": max(dd),
        "max_drawdown_duration_s": 23 * 86400 + 7 * 3600,
        "win_rate": len(wins) / len(trades) if trades else None,
        "profit_factor": sum(wins) / sum(losses) if losses else None,
        "expectancy": sum(x["pnl"] for x in trades) / len(trades) if trades else None,
        "exposure": 0.31,
        "turnover": 8.4,
        "trades": len(trades),
        "avg_holding_s": 11.5 * 3600,
        "fees": sum(0.0035 * 4_000 for _ in trades),
        "final_equity": equity[-1],
    }


def _monthly(t: list[int], equity: list[float]) -> list[dict[str, Any]]:
    months: dict[str, float] = {}
    for moment, value in zip(t, equity, strict=True):
        months[datetime.fromtimestamp(moment, UTC).strftime("%Y-%m")] = value
    out, before = [], equity[0]
    for month, last in months.items():
        out.append({"month": month, "return": last / before - 1})
        before = last
    return out


def _calibration(rng: random.Random) -> dict[str, Any]:
    bins = []
    for b in range(3, 10):
        lo, hi = b / 10, (b + 1) / 10
        count = int(900 * math.exp(-((b - 4.5) ** 2) / 3)) + 5
        mean = lo + 0.05 + rng.uniform(-0.02, 0.02)
        bins.append({"lo": lo, "hi": hi, "count": count, "mean_confidence": mean, "accuracy": mean - 0.06})
    n = sum(x["count"] for x in bins)
    ece = sum(x["count"] * abs(x["accuracy"] - x["mean_confidence"]) for x in bins) / n
    return {"bins": bins, "ece": ece, "n": n}
