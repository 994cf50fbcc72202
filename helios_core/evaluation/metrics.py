"""Performance metrics of a backtest: an equity curve on a time grid and its closed trades.

The grid is epoch seconds (UTC), strictly increasing. Every figure is a plain float, int or
None, ready for JSON: None means the figure is undefined for these inputs (no trades, no
losing trade, a zero standard deviation, a span of zero seconds, a non-positive equity or
capital), never inf or NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from helios_core.trading.enums import PositionSide

YEAR_S = 365 * 86400.0  # crypto trades every day of the year
# A per-step standard deviation below this is rounding in the equity, not risk: dividing by it
# would report a Sharpe ratio of 1e10 for a curve that never moved.
FLAT = 1e-12

METRIC_KEYS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_s",
    "win_rate",
    "profit_factor",
    "expectancy",
    "exposure",
    "turnover",
    "trades",
    "avg_holding_s",
    "fees",
    "final_equity",
)

_CURVE_KEYS = METRIC_KEYS[:7] + ("final_equity",)

Figures = dict[str, float | int | None]


@dataclass(frozen=True, slots=True)
class Trade:
    """One closed round trip. Times are epoch seconds, prices and `pnl` in the quote currency,
    `quantity` in base units; `pnl` is realised and net of both fees (`fees`)."""

    pair: str
    side: str  # "LONG" or "SHORT"
    opened_at: float
    closed_at: float
    entry_price: float
    exit_price: float
    quantity: float
    margin: float
    leverage: float
    fees: float
    pnl: float
    reason: str  # STOP_LOSS, TAKE_PROFIT, TIMEOUT, END_OF_TEST, ...

    def __post_init__(self) -> None:
        if self.side not in (PositionSide.LONG, PositionSide.SHORT):
            raise ValueError(f"side must be LONG or SHORT, got {self.side!r}")
        if not self.closed_at >= self.opened_at:
            raise ValueError(f"a trade closes after it opens: {self.opened_at} > {self.closed_at}")


class CalibrationBin(TypedDict):
    lo: float
    hi: float
    count: int
    mean_confidence: float
    accuracy: float


class Calibration(TypedDict):
    bins: list[CalibrationBin]
    ece: float | None
    n: int


# "return" is a keyword, so this TypedDict needs the call form.
MonthlyReturn = TypedDict("MonthlyReturn", {"month": str, "return": float | None})


@dataclass(frozen=True, slots=True)
class TradeArrays:
    """The columns of a list of trades that `metrics` reads, one entry per trade; `traded` is the
    notional of entry plus exit. Lets a caller with arrays skip building `Trade` objects."""

    opened_at: np.ndarray
    closed_at: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    traded: np.ndarray

    @classmethod
    def of(cls, trades: Sequence[Trade]) -> TradeArrays:
        def column(values: Iterable[float]) -> np.ndarray:
            return np.fromiter(values, dtype=float, count=len(trades))

        return cls(
            opened_at=column(x.opened_at for x in trades),
            closed_at=column(x.closed_at for x in trades),
            pnl=column(x.pnl for x in trades),
            fees=column(x.fees for x in trades),
            traded=column((x.entry_price + x.exit_price) * x.quantity for x in trades),
        )


def metrics(times: np.ndarray, equity: np.ndarray, trades: Sequence[Trade] | TradeArrays, *, capital: float) -> Figures:
    """The figures of `METRIC_KEYS` for an equity curve sampled on `times` and its closed trades.

    Returns are per grid step, annualised by sqrt(steps per year), a year being 365 days of the
    median step. Sharpe uses the sample standard deviation; Sortino the downside deviation
    sqrt(mean(min(r, 0)^2)) over all steps. `cagr` compounds over the span in 365-day years;
    `calmar` = cagr / max_drawdown. `max_drawdown` is a positive fraction of the curve's running
    peak; its duration is the longest stretch from a peak to the first point back at it (or to
    the end). `exposure` is the share of [times[0], times[-1]] with at least one trade open;
    `turnover` the traded notional (entry and exit) over `capital`; `expectancy` the mean pnl.
    None where a figure is undefined (see the module docstring): e.g. `profit_factor` with no
    losing trade, `sharpe` of a flat curve, `win_rate` with no trades.
    """
    t, e = _curve(times, equity)
    columns = trades if isinstance(trades, TradeArrays) else TradeArrays.of(trades)
    out = {**_curve_figures(t, e, capital), **_trade_figures(t, columns, capital)}
    # The last guard for JSON: a non-finite figure (a NaN pnl in a trade, say) is undefined.
    return {key: _finite(out[key]) for key in METRIC_KEYS}


def per_pair(times: np.ndarray, trades: Sequence[Trade], *, capital: float) -> dict[str, Figures]:
    """`metrics` for each pair's trades, keyed by pair.

    Each pair's curve is realised-only: `capital` plus the cumulative pnl of that pair's trades,
    a trade counting from its `closed_at` on; open positions are not marked, so drawdowns and
    Sharpe ratios here are coarser than those of the portfolio curve.
    """
    t = as_grid(times)
    out: dict[str, Figures] = {}
    for pair in sorted({x.pair for x in trades}):
        mine = [x for x in trades if x.pair == pair]
        closed = np.array([x.closed_at for x in mine], dtype=float)
        pnl = np.array([x.pnl for x in mine], dtype=float)
        out[pair] = metrics(t, capital + cumulative_at(t, closed, pnl), mine, capital=capital)
    return out


def cumulative_at(times: np.ndarray, at: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """At each of `times` (sorted), the sum of `weights[i]` over the events with `at[i] <= t`."""
    # Each weight lands on the first grid time at or after its event; one pass sums them up.
    # Searching the few events in the long grid, not the grid in the events, keeps it O(grid).
    first = np.searchsorted(times, np.asarray(at, dtype=float), side="left")
    landed = np.bincount(first, weights=np.asarray(weights, dtype=float), minlength=len(times) + 1)
    return np.cumsum(landed[: len(times)])


def drawdown(equity: np.ndarray) -> np.ndarray:
    """(peak - equity) / peak at each point, the peak being the running maximum: fractions >= 0.
    Zero while the peak is not positive (there is no gain to lose a fraction of)."""
    e = np.asarray(equity, dtype=float)
    if e.size == 0:
        return e.copy()
    peak = np.maximum.accumulate(e)
    out = np.zeros_like(e)
    np.divide(peak - e, peak, out=out, where=peak > 0)
    return out


def monthly_returns(times: np.ndarray, equity: np.ndarray) -> list[MonthlyReturn]:
    """The return of each UTC calendar month on the grid, oldest first: the equity at the month's
    last grid point against the previous month's last (the first month against `equity[0]`).
    A return is None when the equity it starts from is not positive."""
    t, e = _curve(times, equity)
    if t.size == 0:
        return []
    months = np.floor(t).astype(np.int64).astype("datetime64[s]").astype("datetime64[M]")
    last = np.append(np.flatnonzero(months[1:] != months[:-1]), t.size - 1)
    before = np.concatenate(([e[0]], e[last[:-1]]))
    return [
        {"month": str(months[i]), "return": float(e[i] / b - 1) if b > 0 else None}
        for i, b in zip(last, before, strict=True)
    ]


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Calibration:
    """Reliability of a predicted-class probability against whether the prediction was right.

    Equal-width bins on [0, 1] (a confidence of 1 falls in the last); only non-empty bins are
    listed. `ece` is the count-weighted mean |accuracy - mean confidence|; None with no input.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    p = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if p.shape != hit.shape:
        raise ValueError(f"confidence and correct differ in shape: {p.shape} != {hit.shape}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows: list[CalibrationBin] = []
    gap = 0.0
    for b in np.unique(index):
        inside = index == b
        count = int(inside.sum())
        mean_p, accuracy = float(p[inside].mean()), float(hit[inside].mean())
        rows.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": count,
                "mean_confidence": mean_p,
                "accuracy": accuracy,
            }
        )
        gap += count * abs(accuracy - mean_p)
    return {"bins": rows, "ece": gap / p.size if p.size else None, "n": int(p.size)}


def as_grid(times: np.ndarray) -> np.ndarray:
    """`times` as a float array, refused unless 1-d and strictly increasing."""
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or not np.all(np.isfinite(t)) or (t.size > 1 and not np.all(np.diff(t) > 0)):
        raise ValueError("times must be a strictly increasing 1-d array of epoch seconds")
    return t


def _curve(times: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, e = as_grid(times), np.asarray(equity, dtype=float)
    if e.shape != t.shape:
        raise ValueError(f"times and equity differ in shape: {t.shape} != {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("equity must be finite: a NaN or inf is a bug upstream, not a figure")
    return t, e


def _curve_figures(t: np.ndarray, e: np.ndarray, capital: float) -> Figures:
    if e.size == 0:
        return dict.fromkeys(_CURVE_KEYS, None)
    final = float(e[-1])
    growth = final / capital if capital > 0 else None
    cagr = _cagr(growth, float(t[-1] - t[0]))
    sharpe, sortino = _risk_adjusted(t, e)
    if e[0] > 0:
        worst: float | None = float(drawdown(e).max())
        duration: float | None = _underwater_s(t, e)
    else:  # a curve that starts at or below zero has no peak to measure a fraction of
        worst = duration = None
    return {
        "total_return": growth - 1 if growth is not None else None,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / worst if cagr is not None and worst else None,
        "max_drawdown": worst,
        "max_drawdown_duration_s": duration,
        "final_equity": final,
    }


def _finite(value: float | int | None) -> float | int | None:
    return value if value is None or math.isfinite(value) else None


def _cagr(growth: float | None, span_s: float) -> float | None:
    if growth is None or growth <= 0 or span_s <= 0:
        return None
    try:
        return math.exp(math.log(growth) * YEAR_S / span_s) - 1
    except OverflowError:  # a gain over minutes compounded to a year exceeds a float
        return None


def _risk_adjusted(t: np.ndarray, e: np.ndarray) -> tuple[float | None, float | None]:
    # Two returns at least (the sample std needs them), all from a positive equity.
    if e.size < 3 or np.any(e[:-1] <= 0):
        return None, None
    r = e[1:] / e[:-1] - 1
    scale = math.sqrt(YEAR_S / float(np.median(np.diff(t))))
    mean = float(r.mean())
    std = float(r.std(ddof=1))
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    sharpe = mean / std * scale if std > FLAT else None
    sortino = mean / downside * scale if downside > FLAT else None
    return sharpe, sortino


def _underwater_s(t: np.ndarray, e: np.ndarray) -> float:
    # The points at their running peak; between two that are not neighbours, and after the
    # last one, the curve is below a previous peak.
    high = np.flatnonzero(e >= np.maximum.accumulate(e))
    between = t[high[1:]] - t[high[:-1]]
    longest = float(between[np.diff(high) > 1].max(initial=0.0))
    return max(longest, float(t[-1] - t[high[-1]]))


def _trade_figures(t: np.ndarray, trades: TradeArrays, capital: float) -> Figures:
    pnl, opened, closed = trades.pnl, trades.opened_at, trades.closed_at
    n = pnl.size
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    return {
        "win_rate": float(np.mean(pnl > 0)) if n else None,
        "profit_factor": gains / losses if losses > 0 else None,
        "expectancy": float(pnl.mean()) if n else None,
        "exposure": _exposure(t, opened, closed),
        "turnover": float(trades.traded.sum() / capital) if capital > 0 else None,
        "trades": n,
        "avg_holding_s": float(np.mean(closed - opened)) if n else None,
        "fees": float(trades.fees.sum()),
    }


def _exposure(t: np.ndarray, opened: np.ndarray, closed: np.ndarray) -> float | None:
    if t.size == 0 or t[-1] <= t[0]:
        return None
    lo, hi = np.clip(opened, t[0], t[-1]), np.clip(closed, t[0], t[-1])
    if lo.size == 0:
        return 0.0
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    # Merge overlapping intervals: a new block starts where an interval opens after every
    # earlier one has closed.
    starts = np.flatnonzero(np.concatenate(([True], lo[1:] > np.maximum.accumulate(hi)[:-1])))
    covered = np.maximum.reduceat(hi, starts) - lo[starts]
    return float(covered.sum() / (t[-1] - t[0]))
