"""Price deviation: a venue's price against the median of fresh references, with an onset.

Oracle deviation compares Hyperliquid's oracle price with other venues' spot prices; a Helios
pair's deviation compares its traded price on VALR with a reference built from other markets
(for BTCZAR: the median BTC price in USD times USDTZAR on VALR).

- The reference is the median of the quotes that are usable (finite, above zero) and fresh
  (at most `max_age_s` old, and not from the future by more than that); at least `quorum` of them,
  else there is no reference and no verdict. Stale and bad quotes are counted, never a crash.
- Severity by the absolute deviation: MEDIUM (the warning) from 0.25 %, HIGH from 0.5 %, CRITICAL
  from 1.0 % (the documents' levels).
- The onset is the first reading at or above the warning level; the deviation is sustained once
  it has lasted `sustained_s` from that onset. (The source document started tracking only once
  the deviation was already "sustained", so its alert could never fire.) A reading without a
  reference neither starts nor ends a deviation.
- Risk 0-100, piecewise linear in the deviation (25 at the warning level, 50 at HIGH, 70 at
  CRITICAL, 90 at twice CRITICAL) plus up to 10 for persistence (ten times `sustained_s`).

`DeviationTracker` is the streaming detector; `deviation_batch` its twin over arrays; they agree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from helios_core.surveillance.events import Finding, Severity
from helios_core.surveillance.observations import Quote, usable

NAN = math.nan


@dataclass(frozen=True, slots=True)
class DeviationConfig:
    warning_pct: float = 0.25
    high_pct: float = 0.5
    critical_pct: float = 1.0
    max_age_s: float = 120.0
    quorum: int = 2
    sustained_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.warning_pct < self.high_pct < self.critical_pct:
            raise ValueError("deviation levels must rise: 0 < warning < high < critical")
        if self.quorum < 1 or self.max_age_s <= 0 or self.sustained_s < 0:
            raise ValueError("quorum >= 1, max_age_s > 0 and sustained_s >= 0 are required")

    def risk_points(self) -> tuple[list[float], list[float]]:
        xs = [0.0, self.warning_pct, self.high_pct, self.critical_pct, 2 * self.critical_pct]
        return xs, [0.0, 25.0, 50.0, 70.0, 90.0]


@dataclass(frozen=True, slots=True)
class Reference:
    """The median of the fresh references (NaN without a quorum) and how many were used, stale
    or unusable."""

    price: float
    used: int
    stale: int
    bad: int


def reference(quotes: Iterable[Quote], now: float, config: DeviationConfig) -> Reference:
    fresh: list[float] = []
    stale = bad = 0
    for quote in quotes:
        if not usable(quote.price) or not math.isfinite(quote.ts):
            bad += 1
        elif abs(now - quote.ts) > config.max_age_s:
            stale += 1
        else:
            fresh.append(quote.price)
    price = _median(fresh) if len(fresh) >= config.quorum else NAN
    return Reference(price, len(fresh), stale, bad)


def crossed(ref: Reference, fx: Quote | None, now: float, config: DeviationConfig) -> Reference:
    """A reference in another currency: `ref` times the rate `fx` (USDTZAR for a ZAR pair); no
    reference when the rate is missing, unusable or stale."""
    if fx is None or not usable(fx.price) or not math.isfinite(fx.ts):
        return Reference(NAN, ref.used, ref.stale, ref.bad + 1)
    if abs(now - fx.ts) > config.max_age_s:
        return Reference(NAN, ref.used, ref.stale + 1, ref.bad)
    return Reference(ref.price * fx.price, ref.used + 1, ref.stale, ref.bad)


def deviation_pct(price: float, ref: float) -> float:
    """Signed deviation of `price` from `ref` in percent; NaN when either is unusable."""
    if not (usable(price) and usable(ref)):
        return NAN
    return (price - ref) / ref * 100.0


def severity_of(abs_pct: float, config: DeviationConfig) -> Severity | None:
    if not math.isfinite(abs_pct) or abs_pct < config.warning_pct:
        return None
    if abs_pct >= config.critical_pct:
        return Severity.CRITICAL
    if abs_pct >= config.high_pct:
        return Severity.HIGH
    return Severity.MEDIUM


def risk_score(abs_pct: float, duration_s: float, config: DeviationConfig) -> float:
    if not math.isfinite(abs_pct):
        return 0.0
    xs, ys = config.risk_points()
    magnitude = float(np.interp(abs_pct, xs, ys))
    span = 10.0 * config.sustained_s
    persistence = 10.0 * min(duration_s / span, 1.0) if span > 0 and abs_pct >= config.warning_pct else 0.0
    return min(100.0, magnitude + persistence)


@dataclass(frozen=True, slots=True)
class DeviationReading:
    asset: str
    ts: float
    price: float
    reference: float
    deviation_pct: float  # signed; NaN without a reference
    severity: Severity | None
    onset: float | None
    duration_s: float
    sustained: bool
    risk: float
    used: int
    stale: int
    bad: int

    @property
    def valid(self) -> bool:
        return math.isfinite(self.deviation_pct)


class DeviationTracker:
    """Per asset: each reading's deviation, severity and risk, and the onset of the current one."""

    def __init__(self, config: DeviationConfig | None = None) -> None:
        self.config = config or DeviationConfig()
        self.onsets: dict[str, float] = {}

    def update(self, asset: str, price: float, ts: float, ref: Reference) -> DeviationReading:
        config = self.config
        pct = deviation_pct(price, ref.price) if math.isfinite(ts) else NAN
        if not math.isfinite(pct):
            return DeviationReading(
                asset, ts, price, ref.price, NAN, None, None, NAN, False, 0.0, ref.used, ref.stale, ref.bad
            )
        size = abs(pct)
        severity = severity_of(size, config)
        if severity is None:
            self.onsets.pop(asset, None)
            onset, duration = None, 0.0
        else:
            onset = self.onsets.setdefault(asset, ts)
            duration = ts - onset
        sustained = severity is not None and duration >= config.sustained_s
        risk = risk_score(size, duration, config)
        return DeviationReading(
            asset, ts, price, ref.price, pct, severity, onset, duration, sustained, risk, ref.used, ref.stale, ref.bad
        )


def finding(reading: DeviationReading, type: str, venue: str) -> Finding | None:
    """A sustained deviation at the warning level or above is a finding (a security event)."""
    if not reading.sustained or reading.severity is None:
        return None
    return Finding(
        type,
        venue,
        reading.asset,
        reading.severity,
        reading.risk,
        {
            "price": reading.price,
            "reference": reading.reference,
            "deviation_pct": reading.deviation_pct,
            "duration_s": reading.duration_s,
            "references_used": reading.used,
            "references_stale": reading.stale,
            "references_bad": reading.bad,
        },
        began=reading.onset,
    )


@dataclass(frozen=True, slots=True)
class DeviationBatch:
    """`deviation_batch`'s columns, one row per reading (severity 0 for none)."""

    reference: np.ndarray
    deviation_pct: np.ndarray
    severity: np.ndarray
    onset: np.ndarray
    duration_s: np.ndarray
    sustained: np.ndarray
    risk: np.ndarray
    used: np.ndarray


def deviation_batch(
    ts: np.ndarray,
    price: np.ndarray,
    ref_price: np.ndarray,
    ref_ts: np.ndarray,
    config: DeviationConfig | None = None,
    fx_price: np.ndarray | None = None,
    fx_ts: np.ndarray | None = None,
) -> DeviationBatch:
    """The streaming tracker over one asset's readings in time order: `ref_price` and `ref_ts`
    are (n, k), one column per reference venue (NaN where a venue had no quote); `fx_*` the
    optional rate that crosses the reference into the price's currency."""
    config = config or DeviationConfig()
    ts = np.asarray(ts, dtype=float)
    price = np.asarray(price, dtype=float)
    ref_price = np.atleast_2d(np.asarray(ref_price, dtype=float))
    ref_ts = np.atleast_2d(np.asarray(ref_ts, dtype=float))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(ref_price) & (ref_price > 0) & np.isfinite(ref_ts)
        fresh = ok & (np.abs(ts[:, None] - ref_ts) <= config.max_age_s)
    used = fresh.sum(axis=1)
    masked = np.where(fresh, ref_price, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without a fresh reference
        ref = np.where(used >= config.quorum, np.nanmedian(masked, axis=1), np.nan)
    if fx_price is not None and fx_ts is not None:
        fx_price = np.asarray(fx_price, dtype=float)
        fx_ts = np.asarray(fx_ts, dtype=float)
        with np.errstate(invalid="ignore"):
            fx_ok = (
                np.isfinite(fx_price) & (fx_price > 0) & np.isfinite(fx_ts) & (np.abs(ts - fx_ts) <= config.max_age_s)
            )
        ref = np.where(fx_ok, ref * fx_price, np.nan)
        used = used + fx_ok
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(price) & (price > 0) & np.isfinite(ref) & (ref > 0) & np.isfinite(ts)
        pct = np.where(valid, (price - ref) / np.where(valid, ref, 1.0) * 100.0, np.nan)
    size = np.abs(pct)
    severity = np.zeros(len(ts), dtype=np.int8)
    with np.errstate(invalid="ignore"):
        severity[size >= config.warning_pct] = Severity.MEDIUM
        severity[size >= config.high_pct] = Severity.HIGH
        severity[size >= config.critical_pct] = Severity.CRITICAL
    onset = np.full(len(ts), np.nan)
    rows = np.flatnonzero(valid)
    breach = severity[rows] > 0
    if len(rows):
        starts = breach & ~np.r_[False, breach[:-1]]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
        onset[rows] = np.where(breach, ts[rows][first], np.nan)
    duration = np.where(valid, np.where(severity > 0, ts - onset, 0.0), np.nan)
    sustained = (severity > 0) & (duration >= config.sustained_s)
    xs, ys = config.risk_points()
    span = 10.0 * config.sustained_s
    persistence = 10.0 * np.minimum(duration / span, 1.0) if span > 0 else np.zeros(len(ts))
    risk = np.where(valid, np.interp(np.nan_to_num(size), xs, ys) + np.where(severity > 0, persistence, 0.0), 0.0)
    risk = np.minimum(risk, 100.0)
    return DeviationBatch(ref, pct, severity, onset, duration, sustained, risk, used)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
