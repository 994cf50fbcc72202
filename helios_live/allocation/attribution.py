"""Attribution over a window of UTC days from the ledger and the lake (docs/trading.md).

The ledger's fills give each pair's holding at a day's start and what it traded in the day (opens,
trims and closes, each fill at its time, price and fee); the day's starting equity is the latest
portfolio snapshot's at or before midnight (none yet: the configured capital).
A price at a day boundary is the last 1m close of the day that ends there (the lake's
`candles/.../timeframe=1m` file of that day), and a day's quote volume is the sum of close x
volume over its 1m candles. Nothing missing is invented: a pair without a price leaves the
day's benchmark, a holding without one leaves the whole day out, and either is listed.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np

from helios_core.allocation.attribution import (
    DEFAULT_SEGMENT,
    Missing,
    PairDay,
    PairFill,
    WindowAttribution,
    attribute_day,
    closing,
    equal_weights,
    link,
    pair_day,
    volume_weights,
)
from helios_core.trading.enums import OrderSide
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.ledger.records import all_items
from helios_live.settings import HeliosSettings

Benchmark = Literal["equal", "volume"]
BENCHMARKS: tuple[Benchmark, ...] = ("equal", "volume")
VOLUME_DAYS = 30  # the trailing window of the volume benchmark, the days before the one attributed
CANDLES, TIMEFRAME = "candles", "1m"
DAY = timedelta(days=1)
DayFills = dict[str, tuple[float, list[PairFill]]]  # pair: (holding at the day's start, fills in the day)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class DayCandles:
    """Each (pair, day)'s last 1m close and quote volume, each file read once."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._seen: dict[tuple[str, date], tuple[float, float]] = {}

    def _figures(self, pair: str, day: date) -> tuple[float, float]:
        if (pair, day) not in self._seen:
            close, volume = math.nan, math.nan
            if self.lake.exists(CANDLES, pair, TIMEFRAME, day):
                frame = self.lake.read(CANDLES, pair, TIMEFRAME, day)[0]
                opens = frame["ts"].to_numpy(dtype="datetime64[ns]")
                closes = frame["close"].to_numpy(dtype=float)
                priced = np.isfinite(closes) & (closes > 0)
                close = float(closes[priced][np.argmax(opens[priced])]) if priced.any() else math.nan
                traded = closes * frame["volume"].to_numpy(dtype=float)
                volume = float(traded[np.isfinite(traded)].sum()) if len(traded) else math.nan
            self._seen[(pair, day)] = (close, volume)
        return self._seen[(pair, day)]

    def close_before(self, pair: str, boundary: date) -> float:
        """The last 1m close at or before midnight starting `boundary`, within the day before; NaN if none."""
        return self._figures(pair, boundary - DAY)[0]

    def quote_volume(self, pair: str, day: date) -> float:
        return self._figures(pair, day)[1]


def attribution(
    ledger: Ledger,
    lake: Lake,
    start: date,
    end: date,
    benchmark: Benchmark = "equal",
    *,
    universe: Sequence[str],
    capital: float,
    sectors: Mapping[str, str] | None = None,
    volume_days: int = VOLUME_DAYS,
) -> WindowAttribution:
    """Each UTC day of [start, end] attributed against `benchmark` over `universe` (the pairs
    the service trades: "equal" is 1/n of those priced that day, "volume" their shares of the
    quote volume over the `volume_days` before it), linked over the window."""
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    holdings = Holdings(fills(ledger, midnight(end) + DAY))
    curve = ledger.equity_curve()
    times = [at.timestamp() for at, _ in curve]
    days = _Days(DayCandles(lake), sorted(set(universe)), benchmark, sectors or {}, volume_days)
    attributed = []
    day = start
    while day <= end:
        found = bisect.bisect_right(times, midnight(day).timestamp())
        inputs = days.inputs(day, holdings.day(day), curve[found - 1][1] if found else capital)
        if inputs is not None:
            attributed.append(attribute_day(day, inputs))
        day += DAY
    return link(start, end, attributed, days.missing)


def fills(ledger: Ledger, until: datetime) -> list[PairFill]:
    """Every fill before `until`: what a pair holds at any moment is the sum of its fills (opens,
    trims and closes alike, partial fills included)."""
    out: list[PairFill] = []
    for row in all_items(ledger.fills):
        if row["filled_at"] < until:
            sign = 1.0 if row["side"] == OrderSide.BUY else -1.0
            quantity, price, fee = (float(row[k]) for k in ("quantity", "price", "fee"))
            out.append(PairFill(row["pair"], row["filled_at"], sign * quantity, price, fee))
    return out


class Holdings:
    """Each pair's fills in time order, walked one day at a time (days in order), so a window
    costs one pass over the fills, not one a day."""

    def __init__(self, fills: Sequence[PairFill]) -> None:
        self._fills: dict[str, list[PairFill]] = defaultdict(list)
        for f in sorted(fills, key=lambda f: f.at):
            self._fills[f.pair].append(f)
        self._next = dict.fromkeys(self._fills, 0)
        self._held = dict.fromkeys(self._fills, 0.0)

    def day(self, day: date) -> DayFills:
        """(holding at the day's start, fills in the day) of each pair with either; a fill at
        midnight belongs to the day it starts."""
        t0, t1 = midnight(day), midnight(day) + DAY
        out: DayFills = {}
        for pair, fills in self._fills.items():
            i = self._next[pair]
            while i < len(fills) and fills[i].at < t0:  # before the window: only their sum counts
                self._held[pair] = closing(self._held[pair], [fills[i]])
                i += 1
            j = i
            while j < len(fills) and fills[j].at < t1:
                j += 1
            opening, inside = self._held[pair], fills[i:j]
            self._held[pair], self._next[pair] = closing(opening, inside), j
            if opening or inside:
                out[pair] = (opening, inside)
        return out


def for_settings(
    ledger: Ledger, settings: HeliosSettings, start: date, end: date, benchmark: Benchmark = "equal"
) -> WindowAttribution:
    """`attribution` over the live service's pairs, sectors, capital and lake."""
    return attribution(
        ledger,
        Lake(settings.lake_root),
        start,
        end,
        benchmark,
        universe=settings.live.pairs,
        capital=settings.trading.capital,
        sectors=settings.risk.sectors,
    )


class _Days:
    def __init__(
        self,
        candles: DayCandles,
        universe: list[str],
        benchmark: Benchmark,
        sectors: Mapping[str, str],
        volume_days: int,
    ) -> None:
        self.candles, self.universe, self.benchmark = candles, universe, benchmark
        self.sectors, self.volume_days = sectors, volume_days
        self.missing: list[Missing] = []

    def inputs(self, day: date, traded: DayFills, equity: float) -> list[PairDay] | None:
        """The day's inputs from what each pair held at its start and filled in it, or None (with
        why, in `missing`) when it cannot be attributed."""
        if not (math.isfinite(equity) and equity > 0):
            self.missing.append(Missing(day, "", f"equity at the day's start is {equity}: day left out"))
            return None
        pairs = sorted(set(self.universe) | set(traded))
        p0 = {pair: self.candles.close_before(pair, day) for pair in pairs}
        p1 = {pair: self.candles.close_before(pair, day + DAY) for pair in pairs}
        r = {pair: p1[pair] / p0[pair] - 1.0 for pair in pairs}  # NaN where a price is missing
        blocked = self._unpriced(day, traded, p0, p1)
        weights = self._benchmark(day, [p for p in self.universe if math.isfinite(r[p])])
        if blocked or weights is None:
            return None
        inputs = []
        for p in pairs:
            opening, inside = traded.get(p, (0.0, []))
            exposure, pnl = pair_day(opening, inside, p0[p], p1[p])
            segment = self.sectors.get(p, DEFAULT_SEGMENT)
            inputs.append(PairDay(p, exposure / equity, pnl / equity, r[p], weights.get(p, 0.0), segment))
        return inputs

    def _unpriced(self, day: date, traded: DayFills, p0: Mapping[str, float], p1: Mapping[str, float]) -> bool:
        """Whether a pair lacks a price it needs: a holding at the start needs the day's return
        (both closes), one at the end its closing price."""
        lacking = False
        for pair, (opening, inside) in sorted(traded.items()):
            needs = ("start", "end") if opening else ("end",) if closing(opening, inside) else ()
            for side in needs:
                if math.isnan((p0 if side == "start" else p1)[pair]):
                    what = f"no 1m close at the day's {side} for its holding: day left out"
                    self.missing.append(Missing(day, pair, what))
                    lacking = True
        return lacking

    def _benchmark(self, day: date, priced: list[str]) -> dict[str, float] | None:
        for pair in self.universe:
            if pair not in priced:
                self.missing.append(Missing(day, pair, "no 1m close at the day's start or end: out of the benchmark"))
        if self.benchmark == "equal":
            weights = equal_weights(priced)
        else:
            back = [day - k * DAY for k in range(1, self.volume_days + 1)]
            volumes = {p: math.fsum(np.nan_to_num([self.candles.quote_volume(p, d) for d in back])) for p in priced}
            weights = volume_weights(volumes)
        if not weights:
            what = f"no {self.benchmark} benchmark (no pair priced, or no quote volume before the day): day left out"
            self.missing.append(Missing(day, "", what))
            return None
        return weights
