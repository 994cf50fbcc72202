"""Performance attribution over REST (docs/trading.md): a window of whole UTC days split into
allocation, selection, interaction and timing against an equal- or volume-weighted benchmark."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from helios_core.allocation.attribution import DayAttribution, Effects, WindowAttribution
from helios_core.candles import EARLIEST_S
from helios_core.timeframes import as_datetime
from helios_live.allocation.attribution import for_settings
from helios_live.api.deps import LedgerDep, SettingsDep

router = APIRouter(prefix="/api/portfolio", tags=["portfolio"])
MAX_DAYS = 366
DEFAULT_DAYS = 30
FIRST = as_datetime(EARLIEST_S).date()  # the first Bitcoin block: also keeps date arithmetic in range


class EffectsOut(BaseModel):
    allocation: float
    selection: float
    interaction: float
    timing: float
    total: float


class SegmentOut(BaseModel):
    segment: str
    portfolio_weight: float
    benchmark_weight: float
    portfolio_return: float | None  # None: no net weight to form a return over
    benchmark_return: float
    effects: EffectsOut


class PairOut(BaseModel):
    pair: str
    segment: str
    weight: float
    benchmark: float
    market_return: float | None  # None: unpriced, and weighing nothing that day
    contribution: float
    timing: float


class DayOut(BaseModel):
    date: date
    portfolio_return: float
    benchmark_return: float
    held_return: float
    effects: EffectsOut
    segments: list[SegmentOut]
    pairs: list[PairOut]


class MissingOut(BaseModel):
    date: date
    pair: str | None  # None: the day as a whole
    what: str


class AttributionOut(BaseModel):
    """Returns and effects are fractions of equity; window figures are linked (Carino) so that
    `effects.total` is `portfolio_return - benchmark_return`, both compounded over `days`."""

    start: date
    end: date
    benchmark: str
    linking: str
    portfolio_return: float
    benchmark_return: float
    effects: EffectsOut
    segments: dict[str, EffectsOut]
    timing: dict[str, float]
    days: list[DayOut]
    missing: list[MissingOut]


def _effects(e: Effects) -> EffectsOut:
    return EffectsOut(
        allocation=e.allocation, selection=e.selection, interaction=e.interaction, timing=e.timing, total=e.total
    )


def _day(d: DayAttribution) -> DayOut:
    segments = [
        SegmentOut(
            segment=s.segment,
            portfolio_weight=s.portfolio_weight,
            benchmark_weight=s.benchmark_weight,
            portfolio_return=s.portfolio_return,
            benchmark_return=s.benchmark_return,
            effects=_effects(s.effects),
        )
        for s in d.segments
    ]
    pairs = [
        PairOut(
            pair=p.pair,
            segment=p.segment,
            weight=p.weight,
            benchmark=p.benchmark,
            market_return=p.market_return if math.isfinite(p.market_return) else None,
            contribution=p.contribution,
            timing=p.timing,
        )
        for p in d.pairs
    ]
    return DayOut(
        date=d.day,
        portfolio_return=d.portfolio_return,
        benchmark_return=d.benchmark_return,
        held_return=d.held_return,
        effects=_effects(d.totals),
        segments=segments,
        pairs=pairs,
    )


def response(window: WindowAttribution, benchmark: str) -> AttributionOut:
    return AttributionOut(
        start=window.start,
        end=window.end,
        benchmark=benchmark,
        linking=window.linking,
        portfolio_return=window.portfolio_return,
        benchmark_return=window.benchmark_return,
        effects=_effects(window.totals),
        segments={name: _effects(e) for name, e in window.segments.items()},
        timing=dict(window.timing),
        days=[_day(d) for d in window.days],
        missing=[MissingOut(date=m.day, pair=m.pair or None, what=m.what) for m in window.missing],
    )


def _invalid(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


@router.get("/attribution")
async def attribution(
    ledger: LedgerDep,
    settings: SettingsDep,
    start: date | None = None,
    end: date | None = None,
    benchmark: Literal["equal", "volume"] = "equal",
) -> AttributionOut:
    """Whole UTC days `start`..`end` (inclusive; by default the 30 days to yesterday)."""
    today = datetime.now(UTC).date()
    end = end or today - timedelta(days=1)
    if end < FIRST or (start is not None and start < FIRST):
        raise _invalid(f"the window must start on or after {FIRST}: no crypto market traded before")
    start = start or max(FIRST, end - timedelta(days=DEFAULT_DAYS - 1))
    if end < start:
        raise _invalid(f"end ({end}) is before start ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise _invalid(f"the window is {(end - start).days + 1} days; at most {MAX_DAYS}")
    if end >= today:
        # today's closing price does not exist yet: its day cannot be valued
        raise _invalid(f"end ({end}) must be a finished UTC day, before {today}")
    # the ledger and the lake are synchronous: off the event loop
    window = await asyncio.to_thread(for_settings, ledger, settings, start, end, benchmark)
    return response(window, benchmark)
