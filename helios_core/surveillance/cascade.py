"""Liquidation cascades: at least `min_count` liquidations of at least `min_notional` (USD) each
within `window_s`, most of them (`one_way`) on one side, in either direction.

A cascade of longs being liquidated pushes the price down, of shorts up; either is a cascade. The
same fill seen by two polls counts once (by its transaction hash, else by its user, asset, side,
time, price and size). Severity HIGH, CRITICAL from `critical_count` liquidations or
`critical_notional` in the window; the score grows with both.

`CascadeDetector` is the streaming detector (fed liquidations in any order within its window,
checked at any time); `cascade_batch` its twin over a table of liquidations, checked at given
times; they agree.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from helios_core.surveillance.events import Finding, Severity
from helios_core.surveillance.observations import Liquidation, usable


@dataclass(frozen=True, slots=True)
class CascadeConfig:
    min_count: int = 5
    min_notional: float = 10_000.0
    window_s: float = 300.0
    one_way: float = 0.7
    critical_count: int = 15
    critical_notional: float = 5_000_000.0

    def __post_init__(self) -> None:
        if self.min_count < 1 or self.window_s <= 0 or not 0.5 <= self.one_way <= 1.0:
            raise ValueError("min_count >= 1, window_s > 0 and one_way in [0.5, 1] are required")


@dataclass(frozen=True, slots=True)
class CascadeReading:
    asset: str
    ts: float
    count: int  # qualifying liquidations in the window
    longs: int
    shorts: int
    notional: float
    direction: str  # "long" (longs liquidated), "short", or "" when no cascade
    severity: Severity | None
    score: float
    first: float | None  # the oldest qualifying liquidation in the window


def identity(liq: Liquidation) -> tuple[object, ...]:
    """What makes two fills the same: the transaction hash (and user), else every field."""
    if liq.tx_hash:
        return ("tx", liq.tx_hash.lower(), liq.user.lower())
    return (liq.user.lower(), liq.asset, liq.side, liq.ts, liq.price, liq.size)


def qualifies(liq: Liquidation, config: CascadeConfig) -> bool:
    return (
        usable(liq.price)
        and usable(liq.size)
        and math.isfinite(liq.ts)
        and liq.side in ("long", "short")
        and liq.notional >= config.min_notional
    )


def judge(
    asset: str, ts: float, longs: int, shorts: int, notional: float, first: float | None, config: CascadeConfig
) -> CascadeReading:
    count = longs + shorts
    major = max(longs, shorts)
    share = major / count if count else 0.0
    is_cascade = count >= config.min_count and share >= config.one_way
    severity: Severity | None = None
    direction = ""
    score = 0.0
    if is_cascade:
        direction = "long" if longs >= shorts else "short"
        critical = count >= config.critical_count or notional >= config.critical_notional
        severity = Severity.CRITICAL if critical else Severity.HIGH
        by_count = min(count / config.critical_count, 1.0) if config.critical_count else 1.0
        by_notional = min(notional / config.critical_notional, 1.0) if config.critical_notional > 0 else 1.0
        score = 50.0 + 50.0 * max(by_count, by_notional)
    return CascadeReading(asset, ts, count, longs, shorts, notional, direction, severity, score, first)


class CascadeDetector:
    """Per asset, the qualifying liquidations of the last window; `check(asset, now)` judges it."""

    def __init__(self, config: CascadeConfig | None = None) -> None:
        self.config = config or CascadeConfig()
        self.windows: dict[str, deque[Liquidation]] = {}
        self.seen: dict[tuple[object, ...], float] = {}
        self.ignored = 0  # unusable or below the notional

    def add(self, liquidations: Iterable[Liquidation]) -> list[Liquidation]:
        """Fold liquidations in; returns those that were new and qualifying."""
        added: list[Liquidation] = []
        for liq in liquidations:
            if not qualifies(liq, self.config):
                self.ignored += 1
                continue
            key = identity(liq)
            if key in self.seen:
                continue
            self.seen[key] = liq.ts
            window = self.windows.setdefault(liq.asset, deque())
            if window and liq.ts < window[-1].ts:  # late: keep the window in time order
                items = sorted([*window, liq], key=lambda x: x.ts)
                window.clear()
                window.extend(items)
            else:
                window.append(liq)
            added.append(liq)
        return added

    def check(self, asset: str, now: float) -> CascadeReading:
        window = self.windows.get(asset, deque())
        start = now - self.config.window_s
        while window and window[0].ts <= start:
            window.popleft()
        inside = [liq for liq in window if liq.ts <= now]
        longs = sum(1 for liq in inside if liq.side == "long")
        notional = math.fsum(liq.notional for liq in inside)
        first = inside[0].ts if inside else None
        return judge(asset, now, longs, len(inside) - longs, notional, first, self.config)

    def forget_before(self, ts: float) -> None:
        self.seen = {k: t for k, t in self.seen.items() if t >= ts}


def finding(reading: CascadeReading, venue: str) -> Finding | None:
    if reading.severity is None:
        return None
    return Finding(
        "liquidation_cascade",
        venue,
        reading.asset,
        reading.severity,
        reading.score,
        {
            "liquidations": reading.count,
            "longs": reading.longs,
            "shorts": reading.shorts,
            "notional_usd": reading.notional,
            "direction": reading.direction,
        },
        began=reading.first,
    )


def cascade_batch(
    ts: np.ndarray, side_long: np.ndarray, notional: np.ndarray, at: np.ndarray, config: CascadeConfig | None = None
) -> list[tuple[int, int, float]]:
    """For each check time in `at`: (longs, shorts, notional) of the qualifying, de-duplicated
    liquidations with ts in (at - window, at]; `judge` turns each into a reading. The caller
    hands it fills with a usable price and size (`qualifies`); a notional that is not above
    zero never counts."""
    config = config or CascadeConfig()
    ts = np.asarray(ts, dtype=float)
    order = np.argsort(ts, kind="stable")
    ts, side_long, notional = ts[order], np.asarray(side_long, bool)[order], np.asarray(notional, float)[order]
    keep = np.isfinite(ts) & np.isfinite(notional) & (notional > 0) & (notional >= config.min_notional)
    ts, side_long, notional = ts[keep], side_long[keep], notional[keep]
    longs_cum = np.r_[0, np.cumsum(side_long)]
    at = np.asarray(at, dtype=float)
    hi = np.searchsorted(ts, at, side="right")
    lo = np.searchsorted(ts, at - config.window_s, side="right")
    out = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        longs = int(longs_cum[b] - longs_cum[a])
        out.append((longs, (b - a) - longs, math.fsum(notional[a:b].tolist())))
    return out
