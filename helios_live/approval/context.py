"""The market context an approver reads: typed, built only from the pipeline's own numbers, and
serialised deterministically (sorted keys, numbers rounded to what a decision needs), so one
state always gives one text, one hash and one replay key. BDD 51.5 caps it at about 700 tokens:
`to_json` of a ten-pair engine stays under `MAX_CHARS` (about 4 characters a token).

Regimes follow the design: trend BULLISH / BEARISH / SIDEWAYS (the 7-day change against the
pair's own daily volatility), volatility LOW / MEDIUM / HIGH / EXTREME (Tier 3's GARCH regime),
liquidity DEEP / NORMAL / THIN (the last hour's volume against the pair's hourly median),
correlation DECOUPLED / COUPLED / CRISIS (mean correlation with the other pairs: above 0.5, 0.8).
Free text (none today) enters only through `approval.prompt.quote`, in tagged blocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

from helios_core.decision import Context
from helios_core.market import Book
from helios_core.trading.account import Account
from helios_live.models.inference import LABELS

MAX_CHARS = 2800
DAY_S = 86_400
HOUR_S = 3_600
RECENT = 5  # last predictions shown with their outcomes
COUPLED, CRISIS = 0.5, 0.8
TREND_SIGMAS = 1.0
THIN, DEEP = 0.5, 2.0


@dataclass(frozen=True, slots=True)
class Market:
    price: float
    change_24h: float | None
    change_7d: float | None
    change_30d: float | None
    trend: str
    volatility: str
    daily_vol: float | None
    liquidity: str
    volume_1h_vs_median: float | None
    spread_bps: float | None = None
    book_imbalance: float | None = None  # (bid qty - ask qty) / both, top 5 levels
    depth_bid: float | None = None  # quote currency within the top 5 levels
    depth_ask: float | None = None


@dataclass(frozen=True, slots=True)
class Model:
    label: str
    p_buy: float
    p_sell: float
    p_hold: float
    confidence: float
    recent: tuple[tuple[str, str], ...]  # (predicted, actual), oldest first
    hit_rate: float | None  # over the scored predictions this run has seen


@dataclass(frozen=True, slots=True)
class Proposal:
    side: str
    fraction: float
    leverage: float
    stop_loss_pct: float
    take_profit_pct: float
    max_hold_h: float


@dataclass(frozen=True, slots=True)
class Portfolio:
    equity: float
    cash: float
    drawdown: float
    day_pnl: float
    open_positions: int
    gross_exposure: float  # notional of the open positions over equity


@dataclass(frozen=True, slots=True)
class MarketContext:
    pair: str
    at: float  # the decision's time (epoch seconds)
    market: Market
    model: Model
    proposal: Proposal
    portfolio: Portfolio
    correlations: Mapping[str, float]  # with the other pairs that have enough common history
    correlation_regime: str
    notes: tuple[str, ...] = field(default=())  # quoted, source-tagged free text

    def to_json(self) -> str:
        return json.dumps(_plain(self), sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(text: str) -> str:
    """The hash a context is stored and compared under: of its serialised text."""
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready, numbers rounded: four significant figures, or cents for large ones (a price)."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.4g}") if abs(value) < 1e4 else round(value, 2)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def change(buckets: np.ndarray, values: np.ndarray, now: float, span_s: float) -> float | None:
    """The relative price change over the last `span_s` from the pair's 5m log returns (their
    bucket starts and values); None when its history does not reach that far back."""
    if len(buckets) == 0 or buckets[0] > now - span_s:
        return None
    start = int(np.searchsorted(buckets, now - span_s, side="left"))
    return math.expm1(float(values[start:].sum()))


def trend(change_7d: float | None, daily_vol: float) -> str:
    if change_7d is None or not daily_vol > 0:
        return "SIDEWAYS"
    z = math.log1p(change_7d) / (daily_vol * math.sqrt(7))
    return "BULLISH" if z > TREND_SIGMAS else "BEARISH" if z < -TREND_SIGMAS else "SIDEWAYS"


def liquidity(last_hour: float | None, hours: Sequence[float]) -> tuple[str, float | None]:
    """The last hour's volume against the median of the pair's hours before it (None: its last
    hour is not complete yet, or no earlier hour is)."""
    if last_hour is None or not hours:
        return "NORMAL", None
    median = statistics.median(hours)
    if not median > 0 or not math.isfinite(last_hour):
        return "NORMAL", None
    ratio = last_hour / median
    return ("THIN" if ratio < THIN else "DEEP" if ratio > DEEP else "NORMAL"), ratio


def book_figures(book: Book | None, levels: int = 5) -> dict[str, float | None]:
    if book is None or not book.bids or not book.asks:
        return {}
    bid, ask = book.bids[0][0], book.asks[0][0]
    mid = (bid + ask) / 2
    bid_qty = sum(q for _, q in book.bids[:levels])
    ask_qty = sum(q for _, q in book.asks[:levels])
    both = bid_qty + ask_qty
    return {
        "spread_bps": (ask - bid) / mid * 1e4 if mid > 0 else None,
        "book_imbalance": (bid_qty - ask_qty) / both if both > 0 else None,
        "depth_bid": sum(p * q for p, q in book.bids[:levels]),
        "depth_ask": sum(p * q for p, q in book.asks[:levels]),
    }


def correlation_regime(correlations: Iterable[float]) -> str:
    values = list(correlations)
    if not values:
        return "DECOUPLED"
    mean = sum(values) / len(values)
    return "CRISIS" if mean > CRISIS else "COUPLED" if mean > COUPLED else "DECOUPLED"


def build(
    context: Context,
    returns: tuple[np.ndarray, np.ndarray],
    daily_vol: float,
    regime: str,
    volume: tuple[float | None, Sequence[float]],
    book: Book | None,
    account: Account,
    correlations: Mapping[str, float | None],
    scored: Sequence[tuple[str, str]],
    notes: tuple[str, ...] = (),
) -> MarketContext:
    """The context of one decision whose Tier 3 proposal is on `context.sizing`: `returns` are
    the pair's 5m log returns (bucket starts, values), `daily_vol` / `regime` Tier 3's GARCH
    figures, `volume` the pair's last hour of volume and its earlier hours, `scored` its scored
    predictions (predicted, actual), oldest first."""
    sizing = context.sizing
    if sizing is None:
        raise ValueError("the market context needs Tier 3's proposal")
    now, daily = context.now, daily_vol
    week = change(*returns, now, 7 * DAY_S)
    depth, ratio = liquidity(*volume)
    market = Market(
        price=context.price,
        change_24h=change(*returns, now, DAY_S),
        change_7d=week,
        change_30d=change(*returns, now, 30 * DAY_S),
        trend=trend(week, daily),
        volatility=regime,
        daily_vol=daily if math.isfinite(daily) else None,
        liquidity=depth,
        volume_1h_vs_median=ratio,
        **book_figures(book),
    )
    p = context.prediction
    hits = [predicted == actual for predicted, actual in scored]
    model = Model(
        p.label,
        p_buy=p.probabilities[LABELS.index("BUY")],
        p_sell=p.probabilities[LABELS.index("SELL")],
        p_hold=p.probabilities[LABELS.index("HOLD")],
        confidence=p.confidence,
        recent=tuple(scored[-RECENT:]),
        hit_rate=sum(hits) / len(hits) if hits else None,
    )
    proposal = Proposal(
        "LONG" if p.label == "BUY" else "SHORT",
        sizing.fraction,
        sizing.leverage,
        sizing.stop_loss_pct,
        sizing.take_profit_pct,
        sizing.max_hold_s / HOUR_S,
    )
    equity = account.equity
    notional = sum(pos.margin * pos.leverage for pos in account.positions.values())
    portfolio = Portfolio(
        equity=equity,
        cash=account.cash,
        drawdown=account.drawdown,
        day_pnl=equity - account.day_start_equity,
        open_positions=len(account.positions),
        gross_exposure=notional / equity if equity > 0 else 0.0,
    )
    known = {other: value for other, value in sorted(correlations.items()) if value is not None}
    return MarketContext(
        context.pair,
        now,
        market,
        model,
        proposal,
        portfolio,
        known,
        correlation_regime(known.values()),
        notes,
    )
