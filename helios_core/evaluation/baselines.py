"""Baselines a backtest is judged against, on the same candles, grid and costs: buy-and-hold, and
random entries that keep the model's pairs, holding times and sizes but not its timing or side.

Candles are a frame per pair with `ts` (UTC open time), `open`, `high`, `low`, `close`, rows
strictly increasing; a candle closes one step (the median spacing of the frame) after it opens.
Every order is a taker at the candle's price moved by the slippage (against the trader) and pays
`taker_fee` on its notional, as `helios_core.trading.fills` prices a fill without a book.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import pandas as pd

from helios_core.evaluation.metrics import METRIC_KEYS, Trade, TradeArrays, as_grid, cumulative_at, metrics
from helios_core.trading.enums import PositionSide

_EPOCH = pd.Timestamp(0, tz="UTC")


class RandomEntries(TypedDict):
    runs: int
    seed: int
    median: dict[str, float | None]
    p05: dict[str, float | None]
    p95: dict[str, float | None]
    equity_median: list[float]
    samples: dict[str, list[float | None]]


@dataclass(frozen=True, slots=True)
class _Drawn:
    """One run's random trades as columns, in the model trades' order; `rows` are the model
    trades they stand for (a skipped one has none)."""

    rows: np.ndarray
    sign: np.ndarray  # +1 LONG, -1 SHORT
    opened_at: np.ndarray
    closed_at: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    quantity: np.ndarray
    fees: np.ndarray
    pnl: np.ndarray

    def arrays(self) -> TradeArrays:
        traded = (self.entry_price + self.exit_price) * self.quantity
        return TradeArrays(self.opened_at, self.closed_at, self.pnl, self.fees, traded)


@dataclass(frozen=True, slots=True)
class _Series:
    opens_at: np.ndarray  # epoch seconds
    closes_at: np.ndarray
    open: np.ndarray
    close: np.ndarray
    step: float


def buy_and_hold(
    candles: Mapping[str, pd.DataFrame],
    *,
    times: np.ndarray,
    start: float,
    end: float,
    capital: float,
    taker_fee: float,
    slippage_bps: float,
) -> tuple[np.ndarray, list[Trade]]:
    """Equity on `times` and the trades of holding every pair from `start` to `end`.

    The capital is split equally across the pairs with a whole candle in [start, end] (opening
    at or after `start`, closing at or before `end`). Each buys at its first such candle's open
    and sells at its last such candle's close (one END_OF_TEST trade per pair); the fee on entry
    makes the quantity margin + fee = its share. A pair is marked at the latest close at or
    before each grid time, at its cost basis between the entry and the first close, and is cash
    after the exit.
    """
    t = as_grid(times)
    _check(start, end, capital, taker_fee, slippage_bps)
    slip = slippage_bps / 10_000
    held = {}
    for pair, s in _prepared(candles, candles).items():
        first = int(np.searchsorted(s.opens_at, start, side="left"))
        last = int(np.searchsorted(s.closes_at, end, side="right")) - 1
        if first <= last:
            held[pair] = (s, first, last)
    equity = np.zeros(t.shape) if held else np.full(t.shape, float(capital))
    trades = []
    share = capital / len(held) if held else 0.0
    for pair, (s, i, j) in held.items():
        entry = s.open[i] * (1 + slip)
        quantity = share / (entry * (1 + taker_fee))
        entry_fee = entry * quantity * taker_fee
        exit_price = s.close[j] * (1 - slip)
        fees = entry_fee + exit_price * quantity * taker_fee
        pnl = quantity * (exit_price - entry) - fees
        marked = quantity * s.close[np.maximum(_latest_close(s, t), 0)]
        equity += np.select(
            [t < s.opens_at[i], t < s.closes_at[i], t < s.closes_at[j]],
            [np.full(t.shape, share), np.full(t.shape, share - entry_fee), marked],
            share + pnl,
        )
        trades.append(
            Trade(
                pair=pair,
                side=PositionSide.LONG,
                opened_at=float(s.opens_at[i]),
                closed_at=float(s.closes_at[j]),
                entry_price=float(entry),
                exit_price=float(exit_price),
                quantity=float(quantity),
                margin=float(entry * quantity),
                leverage=1.0,
                fees=float(fees),
                pnl=float(pnl),
                reason="END_OF_TEST",
            )
        )
    return equity, trades


def random_entry(
    candles: Mapping[str, pd.DataFrame],
    trades: Sequence[Trade],
    *,
    times: np.ndarray,
    start: float,
    end: float,
    capital: float,
    taker_fee: float,
    slippage_bps: float,
    seed: int,
) -> tuple[np.ndarray, list[Trade]]:
    """Equity on `times` and the trades of one random counterpart to each of the model's trades.

    Each keeps the model trade's pair, holding time (at least one candle; whole candles, so a
    holding that is not a multiple of the step is cut to the candles inside it), notional at
    entry, margin and leverage; its side is a fair coin and its entry a uniformly random candle
    opening in [start, end - holding]. It enters at that open and exits (TIMEOUT) at the close of
    the last candle closing at or before entry + holding. There is no cash constraint: the bets
    are independent. A trade whose pair has no candles, or no window that long, is skipped.
    Equity = capital + realised pnl + the open trades' pnl at the latest close (their cost basis
    less the entry fee before their first close). The same `seed` gives the same output.
    """
    t = as_grid(times)
    _check(start, end, capital, taker_fee, slippage_bps)
    series = _prepared(candles, {x.pair for x in trades})
    marks = {pair: _marks(s, t) for pair, s in series.items()}
    equity, drawn = _random_entry(series, marks, trades, t, start, end, capital, taker_fee, slippage_bps, seed)
    return equity, _trades(drawn, trades)


def random_entries(
    candles: Mapping[str, pd.DataFrame],
    trades: Sequence[Trade],
    *,
    runs: int = 50,
    seed: int = 0,
    times: np.ndarray,
    start: float,
    end: float,
    capital: float,
    taker_fee: float,
    slippage_bps: float,
) -> RandomEntries:
    """`random_entry` with seeds `seed` .. `seed + runs - 1`, summarised: the median, 5th and 95th
    percentiles of each metric across runs (None values left out; None when none is left), the
    median equity at each grid time, and each run's total return and Sharpe ratio."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    t = as_grid(times)
    _check(start, end, capital, taker_fee, slippage_bps)
    series = _prepared(candles, {x.pair for x in trades})
    marks = {pair: _marks(s, t) for pair, s in series.items()}
    curves = np.empty((runs, t.size))
    figures = []
    for run in range(runs):
        curve, drawn = _random_entry(series, marks, trades, t, start, end, capital, taker_fee, slippage_bps, seed + run)
        curves[run] = curve
        figures.append(metrics(t, curve, drawn.arrays(), capital=capital))
    columns = {key: [f[key] for f in figures] for key in METRIC_KEYS}
    return {
        "runs": runs,
        "seed": seed,
        "median": {key: _quantile(values, 50) for key, values in columns.items()},
        "p05": {key: _quantile(values, 5) for key, values in columns.items()},
        "p95": {key: _quantile(values, 95) for key, values in columns.items()},
        "equity_median": np.median(curves, axis=0).tolist(),
        "samples": {key: [_float(v) for v in columns[key]] for key in ("total_return", "sharpe")},
    }


def percentile_rank(value: float | None, samples: Sequence[float | None]) -> float | None:
    """The fraction of `samples` (None values left out) strictly below `value`; None when
    `value` is None or no sample is left."""
    kept = [s for s in samples if s is not None]
    if value is None or not kept:
        return None
    return sum(s < value for s in kept) / len(kept)


def _random_entry(
    series: Mapping[str, _Series],
    marks: Mapping[str, np.ndarray],
    trades: Sequence[Trade],
    t: np.ndarray,
    start: float,
    end: float,
    capital: float,
    taker_fee: float,
    slippage_bps: float,
    seed: int,
) -> tuple[np.ndarray, _Drawn]:
    rng = np.random.default_rng(seed)
    # Drawn for every model trade, skipped or not, so one trade's fate never shifts another's draw.
    sides = np.where(rng.random(len(trades)) < 0.5, 1.0, -1.0)
    entry_draw = rng.random(len(trades))
    pairs = np.array([x.pair for x in trades], dtype=object)
    holding = np.array([x.closed_at - x.opened_at for x in trades], dtype=float)
    chosen: dict[str, list[np.ndarray]] = {
        "rows": [],
        "opened": [],
        "marked": [],
        "closed": [],
        "open": [],
        "close": [],
    }
    for pair, s in series.items():
        rows = np.flatnonzero(pairs == pair)
        hold = np.maximum(holding[rows], s.step)
        first = np.searchsorted(s.opens_at, start, side="left")
        count = np.searchsorted(s.opens_at, end - hold, side="right") - first
        rows, hold, count = rows[count > 0], hold[count > 0], count[count > 0]
        i = first + np.minimum((entry_draw[rows] * count).astype(np.int64), count - 1)
        j = np.searchsorted(s.closes_at, s.opens_at[i] + hold, side="right") - 1
        for key, value in zip(
            chosen, (rows, s.opens_at[i], s.closes_at[i], s.closes_at[j], s.open[i], s.close[j]), strict=True
        ):
            chosen[key].append(value)
    col = {key: np.concatenate(parts) if parts else np.empty(0) for key, parts in chosen.items()}
    order = np.argsort(col["rows"], kind="stable")  # back into the model trades' order
    col = {key: value[order] for key, value in col.items()}
    rows = col["rows"].astype(np.int64)
    sign = sides[rows]
    slip = slippage_bps / 10_000
    notional = np.array([x.entry_price * x.quantity for x in trades], dtype=float)[rows]
    entry = col["open"] * (1 + sign * slip)
    quantity = notional / entry
    exit_price = col["close"] * (1 - sign * slip)
    entry_fee = notional * taker_fee
    fees = entry_fee + exit_price * quantity * taker_fee
    pnl = sign * quantity * (exit_price - entry) - fees
    opened, marked, closed = col["opened"], col["marked"], col["closed"]
    held = sign * quantity
    # Realised pnl from the exit on; before it the entry fee from the open, and from the entry
    # candle's close held * (mark - entry), of which the -held * entry part is a constant.
    equity = capital + cumulative_at(
        t,
        np.concatenate((closed, opened, closed, marked, closed)),
        np.concatenate((pnl, -entry_fee, entry_fee, -held * entry, held * entry)),
    )
    for pair in series:
        mine = pairs[rows] == pair
        equity += _open_sum(t, marked[mine], closed[mine], held[mine]) * marks[pair]
    return equity, _Drawn(rows, sign, opened, closed, entry, exit_price, quantity, fees, pnl)


def _trades(drawn: _Drawn, models: Sequence[Trade]) -> list[Trade]:
    out = []
    for k, row in enumerate(drawn.rows.tolist()):
        model = models[row]
        out.append(
            Trade(
                pair=model.pair,
                side=PositionSide.LONG if drawn.sign[k] > 0 else PositionSide.SHORT,
                opened_at=float(drawn.opened_at[k]),
                closed_at=float(drawn.closed_at[k]),
                entry_price=float(drawn.entry_price[k]),
                exit_price=float(drawn.exit_price[k]),
                quantity=float(drawn.quantity[k]),
                margin=model.margin,
                leverage=model.leverage,
                fees=float(drawn.fees[k]),
                pnl=float(drawn.pnl[k]),
                reason="TIMEOUT",
            )
        )
    return out


def _open_sum(t: np.ndarray, opened: np.ndarray, closed: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """At each grid time, the sum of `weights` over the intervals [opened, closed) holding it."""
    return cumulative_at(t, np.concatenate((opened, closed)), np.concatenate((weights, -weights)))


def _latest_close(s: _Series, t: np.ndarray) -> np.ndarray:
    """Index of the latest candle closing at or before each grid time; -1 before the first."""
    return np.searchsorted(s.closes_at, t, side="right") - 1


def _marks(s: _Series, t: np.ndarray) -> np.ndarray:
    k = _latest_close(s, t)
    # Before the first close nothing of this pair can be marked (nor open): 0 keeps it out.
    return np.where(k >= 0, s.close[np.maximum(k, 0)], 0.0)


def _prepared(candles: Mapping[str, pd.DataFrame], pairs: Iterable[str]) -> dict[str, _Series]:
    """The pairs of `pairs` that have candles, in name order."""
    return {pair: _series(pair, candles[pair]) for pair in sorted(pairs) if pair in candles and len(candles[pair])}


def _series(pair: str, frame: pd.DataFrame) -> _Series:
    ts = frame["ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts) or ts.dt.tz is None:
        raise ValueError(f"{pair}: ts must be timezone-aware UTC datetimes")
    opens_at = (ts - _EPOCH).dt.total_seconds().to_numpy(dtype=float)
    if opens_at.size < 2:
        raise ValueError(f"{pair}: one candle does not say how long a candle is")
    steps = np.diff(opens_at)
    if not np.all(steps > 0):
        raise ValueError(f"{pair}: candles must be strictly increasing in ts")
    step = float(np.median(steps))
    return _Series(
        opens_at=opens_at,
        closes_at=opens_at + step,
        open=frame["open"].to_numpy(dtype=float),
        close=frame["close"].to_numpy(dtype=float),
        step=step,
    )


def _check(start: float, end: float, capital: float, taker_fee: float, slippage_bps: float) -> None:
    if not end > start:
        raise ValueError(f"end must be after start: {start} >= {end}")
    if not capital > 0:
        raise ValueError(f"capital must be positive, got {capital}")
    if not 0.0 <= taker_fee < 1.0 or not 0.0 <= slippage_bps < 10_000:
        raise ValueError("taker_fee must be a fraction and slippage_bps in [0, 10000)")


def _quantile(values: Sequence[float | int | None], q: float) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.percentile(kept, q)) if kept else None


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)
