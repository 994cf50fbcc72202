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

from helios_core.features.spec import BLOCK, WARMUPS
from helios_core.timeframes import Timeframe

NAN = float("nan")


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

    def full(self) -> bool:
        return len(self.values) == self.n and self.unknown == 0


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

    def variance(self, ddof: int) -> float:
        n = len(self.values)
        var = (self.s2 - self.s1 * self.s1 / n) / (n - ddof)
        return var if var > 0.0 else 0.0


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


class _Ewm:
    """pandas `ewm(alpha, adjust=False).mean()`, step for step."""

    __slots__ = ("alpha", "keep", "value")

    def __init__(self, alpha: float) -> None:
        self.alpha, self.keep, self.value = alpha, 1.0 - alpha, NAN

    def push(self, x: float) -> float:
        y = self.value
        if y != y:
            self.value = x
        elif y != x:
            self.value = (self.keep * y + self.alpha * x) / (self.keep + self.alpha)
        return self.value


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
        self.close20 = _Moments(20)
        self.returns20 = _Moments(20, phase=-3)
        self.tpv20, self.volume20, self.volume5 = _Sum(20, phase=-6), _Sum(20, phase=-9), _Sum(5, phase=-2)
        self.volume_moments = _Moments(20, phase=-12)
        self.counts20, self.signed20 = _Sum(20, phase=-15), _Sum(20, phase=-17)
        self.high20, self.low20 = _Extreme(20, True), _Extreme(20, False)
        self.ema12, self.ema26, self.signal9 = _Ewm(2 / 13), _Ewm(2 / 27), _Ewm(2 / 10)
        self.up14, self.down14, self.up7, self.down7 = _Ewm(1 / 14), _Ewm(1 / 14), _Ewm(1 / 7), _Ewm(1 / 7)
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
        self.close20.push(c)
        if ret1 == ret1:
            self.returns20.push(ret1)
        self.tpv20.push((h + low + c) / 3 * v)
        self.volume20.push(v)
        self.volume5.push(v)
        self.volume_moments.push(v)
        self.counts20.push(bar.trade_count)
        sign = NAN if ret1 != ret1 else (1.0 if ret1 > 0 else (-1.0 if ret1 < 0 else 0.0))
        self.signed20.push(sign * v)
        highest, lowest = self.high20.push(h), self.low20.push(low)

        ema12, ema26 = self.ema12.push(c), self.ema26.push(c)
        macd = ema12 - ema26 if n >= 26 else NAN
        signal = self.signal9.push(macd) if n >= 26 else NAN
        diff = c - self.prev_close if n >= 2 else 0.0
        self.prev_close = c
        up, down = (diff if diff > 0 else 0.0), (-diff if diff < 0 else 0.0)
        rsi14 = _rsi(self.up14.push(up), self.down14.push(down))
        rsi7 = _rsi(self.up7.push(up), self.down7.push(down))

        volume_mean20 = self.volume20.total / 20 if n >= 20 else NAN
        sma20 = self.close20.mean() if n >= 20 else NAN
        std20 = math.sqrt(self.close20.variance(0)) if n >= 20 else NAN
        vol_std = math.sqrt(self.volume_moments.variance(0)) if n >= 20 else NAN
        counts_mean = self.counts20.total / 20 if self.counts20.full() else NAN

        bid, ask, bid_qty, ask_qty = bar.book_bid, bar.book_ask, bar.book_bid_qty, bar.book_ask_qty
        values = [
            ret1,
            ret5,
            ret20,
            (c - o) / o,
            (h - (o if o > c else c)) / c,
            ((o if o < c else c) - low) / c,
            (h - low) / c,
            math.sqrt(self.returns20.variance(1)) if n >= 21 else NAN,
            _ratio(self.tpv20.total, self.volume20.total * c) - 1.0 if n >= 20 else NAN,
            _ratio(c - lowest, highest - lowest),
            _ratio(v, volume_mean20),
            _ratio(v - volume_mean20, vol_std),
            _ratio(self.volume5.total / 5, volume_mean20),
            _ratio(bar.trade_count, counts_mean),
            _ratio(self.signed20.total, self.volume20.total) if self.signed20.full() else NAN,
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
        for i in range(BLOCK):
            x = values[i]
            if n < WARMUPS[i] or x - x != 0.0:  # x - x is NaN for NaN and for +/-inf
                values[i] = NAN
        return values

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
