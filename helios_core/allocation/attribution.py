"""Performance attribution: a day's excess return over a benchmark split into allocation,
selection, interaction (Brinson-Fachler, by segment) and timing, and days linked over a window.

Per day, with E0 the equity at its start: a pair's weight w0 is its signed exposure then (signed
quantity x price / E0, shorts negative), its contribution c its P&L over the day net of the fees
paid in it (/ E0), r its market return (close at the day's end / close at its start - 1), b its
benchmark weight (they sum to 1). R_p = sum c, R_b = sum b r, R_h = sum w0 r (the start's holding
held all day). Cash is a segment of its own: weight 1 - sum w0, return 0, benchmark weight 0. The
Brinson effects add up to R_h - R_b and timing (R_p - R_h: entries, exits, fees) takes the rest.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from helios_core.trading.orders import require_aware

CASH = "cash"
DEFAULT_SEGMENT = "crypto"
ZERO_WEIGHT = 1e-12  # a net weight below this is none: a return over it would be float noise
SUM_TOLERANCE = 1e-9
DUST = 1e-9  # of the largest fill: a position closed in parts sums to a few ulps, not 0


@dataclass(frozen=True, slots=True)
class PairFill:
    """A fill as attribution sees it: `quantity` signed (+ bought, - sold), `fee` in the quote currency."""

    pair: str
    at: datetime
    quantity: float
    price: float
    fee: float

    def __post_init__(self) -> None:
        require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class PairDay:
    """One pair's inputs for a day. `market_return` may be NaN only where it weighs nothing (no
    start weight, no benchmark weight): such a pair's day was traded within it, or not at all."""

    pair: str
    weight: float
    contribution: float
    market_return: float
    benchmark: float
    segment: str = DEFAULT_SEGMENT

    def __post_init__(self) -> None:
        if self.segment == CASH:
            raise ValueError(f"{self.pair}: {CASH!r} is the cash segment, not a sector")
        if not all(math.isfinite(v) for v in (self.weight, self.contribution, self.benchmark)) or self.benchmark < 0:
            raise ValueError(f"{self.pair}: weight, contribution and benchmark must be finite, benchmark >= 0")
        if not math.isfinite(self.market_return) and (self.weight or self.benchmark):
            raise ValueError(f"{self.pair}: a weighted pair needs a finite market return")

    @property
    def held(self) -> float:
        """w0 x r: what the start-of-day holding earned."""
        return self.weight * self.market_return if self.weight else 0.0


@dataclass(frozen=True, slots=True)
class Effects:
    allocation: float = 0.0
    selection: float = 0.0
    interaction: float = 0.0
    timing: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.values())

    def values(self) -> tuple[float, float, float, float]:
        return self.allocation, self.selection, self.interaction, self.timing

    def scaled(self, factor: float) -> Effects:
        return Effects(*(factor * v for v in self.values()))

    def plus(self, other: Effects) -> Effects:
        return Effects(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))


@dataclass(frozen=True, slots=True)
class SegmentEffect:
    """`portfolio_return` None: no net weight (none held, or longs and shorts that cancel)."""

    segment: str
    portfolio_weight: float
    benchmark_weight: float
    portfolio_return: float | None
    benchmark_return: float
    effects: Effects


@dataclass(frozen=True, slots=True)
class PairEffect:
    pair: str
    segment: str
    weight: float
    benchmark: float
    market_return: float  # NaN where unknown and weightless
    contribution: float
    timing: float  # c - w0 r


@dataclass(frozen=True, slots=True)
class DayAttribution:
    day: date
    portfolio_return: float  # R_p
    benchmark_return: float  # R_b
    held_return: float  # R_h
    segments: tuple[SegmentEffect, ...]  # sorted, cash last
    pairs: tuple[PairEffect, ...]
    totals: Effects  # totals.total == R_p - R_b


@dataclass(frozen=True, slots=True)
class Missing:
    """What kept a pair out of a day's benchmark or a day out of the window (`pair` "": the day)."""

    day: date
    pair: str
    what: str


@dataclass(frozen=True, slots=True)
class WindowAttribution:
    """Days linked by Carino's factors (`linking` "carino"), or summed ("sum") where a day or the window
    lost everything (1 + R <= 0: no logarithm); the days `missing` kept out are not in `days`."""

    start: date
    end: date
    portfolio_return: float  # compounded over `days`
    benchmark_return: float
    totals: Effects  # totals.total == portfolio_return - benchmark_return under Carino
    segments: Mapping[str, Effects]
    timing: Mapping[str, float]  # per pair
    days: tuple[DayAttribution, ...]
    linking: str
    missing: tuple[Missing, ...] = ()


def closing(opening: float, fills: Iterable[PairFill]) -> float:
    """The signed quantity held after `fills`, from `opening`; float dust of the quantities is 0."""
    quantities = [f.quantity for f in fills]
    total = math.fsum([opening, *quantities])
    return total if abs(total) > DUST * max(abs(q) for q in [opening, *quantities]) else 0.0


def pair_day(opening: float, fills: Sequence[PairFill], start_price: float, end_price: float) -> tuple[float, float]:
    """(signed exposure at the start, P&L over the day net of its fees) of one pair holding
    `opening` at the start and filled `fills` in the day, in the quote currency: holdings at the
    boundary prices (either may be NaN where nothing is held then), fills at theirs. Gross of the
    account's floor (a loss beyond the margin is the exchange's): it is the market's move."""
    held = closing(opening, fills)
    paid = math.fsum(f.quantity * f.price for f in fills)  # a buy pays, a sell (negative) receives
    v0 = opening * start_price if opening else 0.0
    v1 = held * end_price if held else 0.0
    return v0, v1 - v0 - paid - math.fsum(f.fee for f in fills)


def equal_weights(pairs: Iterable[str]) -> dict[str, float]:
    names = sorted(set(pairs))
    return {p: 1.0 / len(names) for p in names}


def volume_weights(volumes: Mapping[str, float]) -> dict[str, float]:
    """Each pair's share of the quote volume; {} where no pair has a positive one."""
    usable = {p: v for p, v in volumes.items() if math.isfinite(v) and v > 0}
    total = sum(usable.values())
    return {p: v / total for p, v in sorted(usable.items())} if total > 0 else {}


def attribute_day(day: date, pairs: Sequence[PairDay]) -> DayAttribution:
    """Brinson-Fachler by segment plus timing for one day (see the module's docstring)."""
    if len({p.pair for p in pairs}) != len(pairs):
        raise ValueError(f"{day}: a pair appears twice")
    if abs(sum(p.benchmark for p in pairs) - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{day}: benchmark weights must sum to 1, got {sum(p.benchmark for p in pairs):.12f}")
    r_b = sum(p.benchmark * p.market_return for p in pairs if p.benchmark)
    segments = [_segment(s, [p for p in pairs if p.segment == s], r_b) for s in sorted({p.segment for p in pairs})]
    cash = 1.0 - sum(p.weight for p in pairs)
    # cash earns nothing and the benchmark holds none: being in it (or borrowing, below 0) is allocation
    segments.append(SegmentEffect(CASH, cash, 0.0, 0.0, 0.0, Effects(allocation=-cash * r_b)))
    totals = functools.reduce(Effects.plus, (s.effects for s in segments), Effects())
    effects = tuple(
        PairEffect(p.pair, p.segment, p.weight, p.benchmark, p.market_return, p.contribution, p.contribution - p.held)
        for p in sorted(pairs, key=lambda p: p.pair)
    )
    r_p, r_h = sum(p.contribution for p in pairs), sum(p.held for p in pairs)
    return DayAttribution(day, r_p, r_b, r_h, tuple(segments), effects, totals)


def _segment(name: str, pairs: list[PairDay], r_b: float) -> SegmentEffect:
    w_p, w_b = sum(p.weight for p in pairs), sum(p.benchmark for p in pairs)
    held = sum(p.held for p in pairs)
    known = [p.market_return for p in pairs if math.isfinite(p.market_return)]
    own = sum(known) / len(known) if known else r_b  # none in the benchmark: its own market, equal-weighted
    r_bs = sum(p.benchmark * p.market_return for p in pairs if p.benchmark) / w_b if w_b > 0 else own
    r_ps = held / w_p if abs(w_p) > ZERO_WEIGHT else None
    allocation = (w_p - w_b) * (r_bs - r_b)
    interaction = (w_p - w_b) * (r_ps - r_bs) if r_ps is not None else 0.0
    # the rest of the segment's active return, so the three add up whatever the weights
    selection = held - w_p * r_bs - interaction
    timing = sum(p.contribution - p.held for p in pairs)
    return SegmentEffect(name, w_p, w_b, r_ps, r_bs, Effects(allocation, selection, interaction, timing))


def carino(r_p: float, r_b: float) -> float | None:
    """(ln(1 + r_p) - ln(1 + r_b)) / (r_p - r_b), 1 / (1 + r) where they are equal; None where a
    logarithm does not exist (1 + r <= 0). log1p of the ratio keeps the digits a difference of
    logarithms would cancel away."""
    if not (r_p > -1.0 and r_b > -1.0):
        return None
    excess = r_p - r_b
    k = 1.0 / (1.0 + r_b) if excess == 0 else math.log1p(excess / (1.0 + r_b)) / excess
    return k if math.isfinite(k) and k > 0 else None


def link(start: date, end: date, days: Sequence[DayAttribution], missing: Sequence[Missing] = ()) -> WindowAttribution:
    """The days' effects, each scaled by k_t / k, so that they add up to the compounded excess
    prod(1 + R_p,t) - prod(1 + R_b,t) over the window."""
    r_p = math.prod(1.0 + d.portfolio_return for d in days) - 1.0
    r_b = math.prod(1.0 + d.benchmark_return for d in days) - 1.0
    k = carino(r_p, r_b)
    ks = [carino(d.portfolio_return, d.benchmark_return) for d in days]
    linked = k is not None and all(kt is not None for kt in ks)
    factors = [kt / k for kt in ks if kt is not None] if linked and k is not None else [1.0] * len(days)
    totals = functools.reduce(Effects.plus, (d.totals.scaled(f) for d, f in zip(days, factors, strict=True)), Effects())
    segments: dict[str, Effects] = {}
    timing: dict[str, float] = {}
    for day, f in zip(days, factors, strict=True):
        for s in day.segments:
            segments[s.segment] = segments.get(s.segment, Effects()).plus(s.effects.scaled(f))
        for p in day.pairs:
            timing[p.pair] = timing.get(p.pair, 0.0) + p.timing * f
    return WindowAttribution(
        start, end, r_p, r_b, totals, segments, timing, tuple(days), "carino" if linked else "sum", tuple(missing)
    )
