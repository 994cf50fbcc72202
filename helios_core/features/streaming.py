"""Streaming features: one timeframe block updated in O(1) per closed candle.

Plain-Python arithmetic on a few running sums, ring buffers and monotonic deques; no
history is re-scanned. Running sums are re-summed exactly (`math.fsum`) once per window
length, so rounding cannot accumulate: that keeps this within 1e-9 of the batch
implementation for any length of stream. A missing candle (a gap) resets the block, as a
new segment starts in the batch implementation.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

from helios_core.features.spec import WARMUPS, max_warmup
from helios_core.timeframes import Timeframe

NAN = float("nan")
INF = float("inf")
MAX_WARMUP = max_warmup()
_A12, _A26, _A9, _A14, _A7 = 2 / 13, 2 / 27, 2 / 10, 1 / 14, 1 / 7
_K12, _K26, _K9, _K14, _K7 = 1 - _A12, 1 - _A26, 1 - _A9, 1 - _A14, 1 - _A7


class Bar(NamedTuple):
    """One closed candle as the streaming side sees it; NaN marks an unknown extra."""

    ts: int  # open time, epoch seconds
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: float = NAN
    buy_volume: float = NAN
    book_bid: float = NAN
    book_ask: float = NAN
    book_bid_qty: float = NAN
    book_ask_qty: float = NAN
    ref_close: float = NAN


class _Sum:
    """Sum of the last `n` values, exact-resummed every `n` updates; NaN inside -> NaN.

    `phase` staggers the re-summing of windows of equal length, so they do not all pay
    for it on the same candle (it shows in the latency tail).
    """

    __slots__ = ("n", "values", "total", "unknown", "since")

    def __init__(self, n: int, phase: int = 0) -> None:
        self.n = n
        self.values: deque[float] = deque()
        self.total = 0.0
        self.unknown = 0
        self.since = phase

    def push(self, x: float) -> None:
        values = self.values
        if len(values) == self.n:
            old = values.popleft()
            if old != old:
                self.unknown -= 1
            else:
                self.total -= old
        values.append(x)
        if x != x:
            self.unknown += 1
        else:
            self.total += x
        self.since += 1
        if self.since >= self.n:
            self.since = 0
            self.total = math.fsum(v for v in values if v == v)


class _Moments:
    """Sum and sum of squares of the last `n` values around an anchor, re-anchored and
    exact-resummed every `n` updates, so the variance does not cancel catastrophically."""

    __slots__ = ("n", "values", "anchor", "s1", "s2", "since")

    def __init__(self, n: int, phase: int = 0) -> None:
        self.n = n
        self.values: deque[float] = deque()
        self.anchor = 0.0
        self.s1 = 0.0
        self.s2 = 0.0
        self.since = phase

    def push(self, x: float) -> None:
        values = self.values
        a = self.anchor
        if len(values) == self.n:
            d = values.popleft() - a
            self.s1 -= d
            self.s2 -= d * d
        values.append(x)
        d = x - a
        self.s1 += d
        self.s2 += d * d
        self.since += 1
        if self.since >= self.n:
            self.since = 0
            self.anchor = a = x
            self.s1 = math.fsum(v - a for v in values)
            self.s2 = math.fsum((v - a) * (v - a) for v in values)

    def mean(self) -> float:
        return self.anchor + self.s1 / len(self.values)


class _Extreme:
    """Max (or min) of the last `n` values with a monotonic deque: amortised O(1)."""

    __slots__ = ("n", "items", "count", "is_max")

    def __init__(self, n: int, is_max: bool) -> None:
        self.n, self.is_max, self.count = n, is_max, 0
        self.items: deque[tuple[int, float]] = deque()

    def push(self, x: float) -> float:
        items = self.items
        if self.is_max:
            while items and items[-1][1] <= x:
                items.pop()
        else:
            while items and items[-1][1] >= x:
                items.pop()
        items.append((self.count, x))
        if items[0][0] <= self.count - self.n:
            items.popleft()
        self.count += 1
        return items[0][1]


class _Window:
    """The last `n` candles' close, return, typical price x volume, volume, trade count and
    signed volume, with their running sums in one place (one call per candle, not six).

    Close and volume are summed around an anchor so their variances do not cancel; every
    `n` candles the anchors move to the newest values and all sums are re-summed exactly.
    Returns, trade counts and signed volumes may be unknown (NaN): those are counted and the
    sums that need them report unknown until the NaN has left the window.
    """

    __slots__ = (
        "n",
        "rows",
        "since",
        "ca",
        "c1",
        "c2",
        "r1",
        "r2",
        "r_unknown",
        "tpv",
        "va",
        "v1",
        "v2",
        "k1",
        "k_unknown",
        "s1",
        "s_unknown",
    )

    def __init__(self, n: int) -> None:
        self.n = n
        self.rows: deque[tuple[float, float, float, float, float, float]] = deque()
        self.since = 0
        self.ca = self.c1 = self.c2 = self.r1 = self.r2 = self.tpv = self.va = self.v1 = self.v2 = 0.0
        self.k1 = self.s1 = 0.0
        self.r_unknown = self.k_unknown = self.s_unknown = 0

    def push(self, c: float, r: float, tpv: float, v: float, k: float, s: float) -> None:
        rows = self.rows
        if len(rows) == self.n:
            self._drop(rows.popleft())
        rows.append((c, r, tpv, v, k, s))
        d = c - self.ca
        self.c1 += d
        self.c2 += d * d
        if r == r:
            self.r1 += r
            self.r2 += r * r
        else:
            self.r_unknown += 1
        self.tpv += tpv
        d = v - self.va
        self.v1 += d
        self.v2 += d * d
        if k == k:
            self.k1 += k
        else:
            self.k_unknown += 1
        if s == s:
            self.s1 += s
        else:
            self.s_unknown += 1
        self.since += 1
        if self.since >= self.n:
            self._resum(c, v)

    def _drop(self, row: tuple[float, float, float, float, float, float]) -> None:
        c, r, tpv, v, k, s = row
        d = c - self.ca
        self.c1 -= d
        self.c2 -= d * d
        if r == r:
            self.r1 -= r
            self.r2 -= r * r
        else:
            self.r_unknown -= 1
        self.tpv -= tpv
        d = v - self.va
        self.v1 -= d
        self.v2 -= d * d
        if k == k:
            self.k1 -= k
        else:
            self.k_unknown -= 1
        if s == s:
            self.s1 -= s
        else:
            self.s_unknown -= 1

    def _resum(self, close_anchor: float, volume_anchor: float) -> None:
        self.since = 0
        self.ca, self.va = close_anchor, volume_anchor
        rows = self.rows
        dc = [row[0] - close_anchor for row in rows]
        dv = [row[3] - volume_anchor for row in rows]
        known_r = [row[1] for row in rows if row[1] == row[1]]
        self.c1, self.c2 = math.fsum(dc), math.fsum(d * d for d in dc)
        self.v1, self.v2 = math.fsum(dv), math.fsum(d * d for d in dv)
        self.r1, self.r2 = math.fsum(known_r), math.fsum(x * x for x in known_r)
        self.tpv = math.fsum(row[2] for row in rows)
        self.k1 = math.fsum(row[4] for row in rows if row[4] == row[4])
        self.s1 = math.fsum(row[5] for row in rows if row[5] == row[5])


def _variance(s1: float, s2: float, n: int, ddof: int) -> float:
    var = (s2 - s1 * s1 / n) / (n - ddof)
    return var if var > 0.0 else 0.0


def _ewm(y: float, x: float, alpha: float, keep: float) -> float:
    """One step of pandas `ewm(alpha, adjust=False).mean()`, as pandas computes it."""
    if y != y:
        return x
    if y != x:
        return (keep * y + alpha * x) / (keep + alpha)
    return y


def _ratio(num: float, den: float) -> float:
    if den == 0.0 or den != den or num != num:
        return NAN
    return num / den


class StreamingBlock:
    """The 30 features of one timeframe, fed one closed candle at a time."""

    def __init__(self, timeframe: Timeframe) -> None:
        self.step = timeframe.seconds
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.last_ts: int | None = None
        self.log_closes: deque[float] = deque(maxlen=21)
        self.close50 = _Moments(50, phase=-25)
        self.window20 = _Window(20)
        self.volume5 = _Sum(5, phase=-2)
        self.high20, self.low20 = _Extreme(20, True), _Extreme(20, False)
        # EMA states: 12, 26, MACD signal 9, Wilder averages of gains/losses for RSI 14 and 7
        self.ema12 = self.ema26 = self.signal9 = NAN
        self.up14 = self.down14 = self.up7 = self.down7 = NAN
        self.prev_close = NAN
        self.prev_ref_close = NAN
        self.pairs30 = _CoMoments(30)

    def update(self, bar: Bar) -> list[float]:
        """Fold in the next closed candle; return the 30 features, NaN where not valid."""
        if self.last_ts is not None and bar.ts - self.last_ts != self.step:
            self._reset()  # a missing candle: features must not span the gap
        self.last_ts = bar.ts
        self.count += 1
        n = self.count
        o, h, low, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume

        log_c = math.log(c)
        logs = self.log_closes
        logs.append(log_c)
        ret1 = log_c - logs[-2] if n >= 2 else NAN
        ret5 = log_c - logs[-6] if n >= 6 else NAN
        ret20 = log_c - logs[-21] if n >= 21 else NAN

        self.close50.push(c)
        sign = NAN if ret1 != ret1 else (1.0 if ret1 > 0 else (-1.0 if ret1 < 0 else 0.0))
        w = self.window20
        w.push(c, ret1, (h + low + c) / 3 * v, v, bar.trade_count, sign * v)
        self.volume5.push(v)
        highest, lowest = self.high20.push(h), self.low20.push(low)

        self.ema12 = ema12 = _ewm(self.ema12, c, _A12, _K12)
        self.ema26 = ema26 = _ewm(self.ema26, c, _A26, _K26)
        macd = ema12 - ema26 if n >= 26 else NAN
        if n >= 26:
            self.signal9 = _ewm(self.signal9, macd, _A9, _K9)
        signal = self.signal9 if n >= 26 else NAN
        diff = c - self.prev_close if n >= 2 else 0.0
        self.prev_close = c
        up, down = (diff if diff > 0 else 0.0), (-diff if diff < 0 else 0.0)
        self.up14, self.down14 = _ewm(self.up14, up, _A14, _K14), _ewm(self.down14, down, _A14, _K14)
        self.up7, self.down7 = _ewm(self.up7, up, _A7, _K7), _ewm(self.down7, down, _A7, _K7)
        rsi14, rsi7 = _rsi(self.up14, self.down14), _rsi(self.up7, self.down7)

        full = n >= 20
        volume_mean20 = w.va + w.v1 / 20 if full else NAN
        volume_sum20 = volume_mean20 * 20
        sma20 = w.ca + w.c1 / 20 if full else NAN
        std20 = math.sqrt(_variance(w.c1, w.c2, 20, 0)) if full else NAN
        vol_std = math.sqrt(_variance(w.v1, w.v2, 20, 0)) if full else NAN
        counts_mean = w.k1 / 20 if full and not w.k_unknown else NAN

        bid, ask, bid_qty, ask_qty = bar.book_bid, bar.book_ask, bar.book_bid_qty, bar.book_ask_qty
        values = [
            ret1,
            ret5,
            ret20,
            (c - o) / o,
            (h - (o if o > c else c)) / c,
            ((o if o < c else c) - low) / c,
            (h - low) / c,
            math.sqrt(_variance(w.r1, w.r2, 20, 1)) if full and not w.r_unknown else NAN,
            _ratio(w.tpv, volume_sum20 * c) - 1.0,
            _ratio(c - lowest, highest - lowest),
            _ratio(v, volume_mean20),
            _ratio(v - volume_mean20, vol_std),
            _ratio(self.volume5.total / 5, volume_mean20),
            _ratio(bar.trade_count, counts_mean),
            _ratio(w.s1, volume_sum20) if full and not w.s_unknown else NAN,
            rsi14,
            rsi7,
            macd / c,
            signal / c,
            sma20 / c - 1.0,
            self.close50.mean() / c - 1.0 if n >= 50 else NAN,
            ema12 / c - 1.0,
            ema26 / c - 1.0,
            (sma20 + 2 * std20) / c - 1.0,
            (sma20 - 2 * std20) / c - 1.0,
            _ratio(ask - bid, (ask + bid) / 2),
            _ratio(bid_qty - ask_qty, bid_qty + ask_qty),
            _ratio(bid_qty + ask_qty, volume_mean20),
            _ratio(2 * bar.buy_volume - v, v),
            self._correlation(ret1, self._reference_return(bar.ref_close)),
        ]
        if n >= MAX_WARMUP:  # steady state: NaN already means "not valid"; only inf to drop
            if INF in values or -INF in values:
                return [x if x - x == 0.0 else NAN for x in values]  # x - x is NaN for NaN and inf
            return values
        return [x if n >= w and x - x == 0.0 else NAN for x, w in zip(values, WARMUPS, strict=True)]

    def _reference_return(self, ref_close: float) -> float:
        previous, self.prev_ref_close = self.prev_ref_close, ref_close
        if ref_close > 0.0 and previous > 0.0:
            return math.log(ref_close) - math.log(previous)
        return NAN

    def _correlation(self, x: float, y: float) -> float:
        if x != x or y != y:
            self.pairs30 = _CoMoments(30)  # an unknown pair breaks the window
            return NAN
        pairs = self.pairs30
        pairs.push(x, y)
        return pairs.correlation() if len(pairs.xs) == pairs.n else NAN


class _CoMoments:
    """Anchored running moments of the last `n` (x, y) pairs, for a rolling correlation."""

    __slots__ = ("n", "xs", "ys", "ax", "ay", "sx", "sy", "sxx", "syy", "sxy", "since")

    def __init__(self, n: int) -> None:
        self.n = n
        self.xs: deque[float] = deque()
        self.ys: deque[float] = deque()
        self.ax = self.ay = self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0
        self.since = 0

    def push(self, x: float, y: float) -> None:
        ax, ay = self.ax, self.ay
        if len(self.xs) == self.n:
            dx, dy = self.xs.popleft() - ax, self.ys.popleft() - ay
            self.sx -= dx
            self.sy -= dy
            self.sxx -= dx * dx
            self.syy -= dy * dy
            self.sxy -= dx * dy
        self.xs.append(x)
        self.ys.append(y)
        dx, dy = x - ax, y - ay
        self.sx += dx
        self.sy += dy
        self.sxx += dx * dx
        self.syy += dy * dy
        self.sxy += dx * dy
        self.since += 1
        if self.since >= self.n:
            self._resum(x, y)

    def _resum(self, ax: float, ay: float) -> None:
        self.since = 0
        self.ax, self.ay = ax, ay
        dxs = [v - ax for v in self.xs]
        dys = [v - ay for v in self.ys]
        self.sx, self.sy = math.fsum(dxs), math.fsum(dys)
        self.sxx = math.fsum(d * d for d in dxs)
        self.syy = math.fsum(d * d for d in dys)
        self.sxy = math.fsum(a * b for a, b in zip(dxs, dys, strict=True))

    def correlation(self) -> float:
        n = len(self.xs)
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        if vx <= 0.0 or vy <= 0.0:
            return NAN
        return (self.sxy - self.sx * self.sy / n) / math.sqrt(vx * vy)


def _rsi(avg_up: float, avg_down: float) -> float:
    if avg_down == 0.0:
        return 1.0
    return (100.0 - 100.0 / (1.0 + avg_up / avg_down)) / 100.0
