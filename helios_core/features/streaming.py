"""Streaming features: one timeframe block updated in O(1) per closed candle.

Plain-Python arithmetic on a few running sums, ring buffers and monotonic deques; no
history is re-scanned. Running sums are re-summed exactly (`math.fsum`) once per window
length, so rounding cannot accumulate: that keeps this within 1e-9 of the batch
implementation for any length of stream. A missing candle (a gap) resets the block, as a
new segment starts in the batch implementation. The block's state lives in the locals of a
generator (`_block_stream`), the cheapest state CPython has, for the live latency budget.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from typing import NamedTuple

from helios_core.features.spec import WARMUPS, max_warmup
from helios_core.timeframes import Timeframe

NAN = float("nan")
INF = float("inf")
MAX_WARMUP = max_warmup()
_A12, _A26, _A9, _A14, _A7 = 2 / 13, 2 / 27, 2 / 10, 1 / 14, 1 / 7
_K12, _K26, _K9, _K14, _K7 = 1 - _A12, 1 - _A26, 1 - _A9, 1 - _A14, 1 - _A7
# the EMA denominators keep + alpha, as pandas computes them
_D12, _D26, _D9, _D14, _D7 = _K12 + _A12, _K26 + _A26, _K9 + _A9, _K14 + _A14, _K7 + _A7


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


def _known_sum(values: deque[float], unknown: int) -> float:
    """Exact sum of the known values; `unknown` counts the NaNs among `values`.

    `math.fsum` is correctly rounded, so leaving out the NaN filter when there is no NaN
    (or summing nothing when all are NaN) gives the very same bits, only sooner.
    """
    if not unknown:
        return math.fsum(values)
    if unknown == len(values):
        return 0.0
    return math.fsum([x for x in values if x == x])


def _anchored_sums(values: deque[float], anchor: float) -> tuple[float, float]:
    """Exact sum and sum of squares of `values` less `anchor`."""
    deltas = [x - anchor for x in values]
    return math.fsum(deltas), math.fsum([d * d for d in deltas])


def _ratio(num: float, den: float) -> float:
    if den == 0.0 or den != den or num != num:
        return NAN
    return num / den


class StreamingBlock:
    """The 30 features of one timeframe, fed one closed candle at a time."""

    def __init__(self, timeframe: Timeframe) -> None:
        self.step = timeframe.seconds
        self._send = self._start()

    def _start(self) -> Callable[[Bar], list[float]]:
        stream = _block_stream(self.step)
        next(stream)
        return stream.send

    def update(self, bar: Bar) -> list[float]:
        """Fold in the next closed candle; return the 30 features, NaN where not valid."""
        try:
            return self._send(bar)
        except Exception:
            self._send = self._start()  # a finished generator cannot go on: start a new segment
            raise


def _block_stream(step: int) -> Generator[list[float], Bar, None]:
    """The block's state as the local variables of a generator, one segment per outer loop.

    One long function rather than small classes on purpose: every candle reads and writes
    some forty running values, and locals cost a fraction of attribute accesses (this is
    the hot path of the live kernel's 50 us budget). Each running sum takes the leaving
    value off before the new one goes on, and is re-summed exactly (`math.fsum`; closes and
    volumes around the newest value as the new anchor) once per window length: the sums of
    20 (close, return, typical price x volume, volume, trade count, signed volume) every 20
    candles, of 5 volumes at phase -2 and of 50 closes at phase -25, so they do not all pay
    for it on the same candle.
    """
    bar = yield []
    while True:  # a segment: starts on the first candle and after every missing one
        n = last_ts = 0
        logs: deque[float] = deque(maxlen=21)
        closes50: deque[float] = deque()
        anchor50 = sum50 = squares50 = 0.0
        since50 = -25
        volumes5: deque[float] = deque()
        total5, unknown5, since5 = 0.0, 0, -2
        cs: deque[float] = deque()  # the 20-candle window's columns
        rs: deque[float] = deque()
        r2s: deque[float] = deque()  # the returns squared, as they went into the running sum
        tpvs: deque[float] = deque()
        vs: deque[float] = deque()
        ks: deque[float] = deque()
        ss: deque[float] = deque()
        ca = c1 = c2 = r1 = r2 = tpv_sum = va = v1 = v2 = k1 = s1 = 0.0
        r_unknown = k_unknown = s_unknown = since20 = 0
        highs: deque[tuple[int, float]] = deque()  # monotonic: (candle number, value)
        lows: deque[tuple[int, float]] = deque()
        # EMA states: 12, 26, MACD signal 9, Wilder averages of gains/losses for RSI 14 and 7
        ema12 = ema26 = signal9 = up14 = down14 = up7 = down7 = NAN
        prev_close = prev_ref = NAN
        pairs = _CoMoments(30)
        while True:
            ts, o, h, low, c, v, trade_count, buy_volume, bid, ask, bid_qty, ask_qty, ref_close = bar
            if n and ts - last_ts != step:
                break  # a missing candle: features must not span the gap
            last_ts = ts
            n += 1

            log_c = math.log(c)
            logs.append(log_c)
            ret1 = log_c - logs[-2] if n >= 2 else NAN
            ret5 = log_c - logs[-6] if n >= 6 else NAN
            ret20 = log_c - logs[-21] if n >= 21 else NAN

            if len(closes50) == 50:
                d = closes50.popleft() - anchor50
                sum50 -= d
                squares50 -= d * d
            closes50.append(c)
            d = c - anchor50
            sum50 += d
            squares50 += d * d
            since50 += 1
            if since50 >= 50:
                since50, anchor50 = 0, c
                sum50, squares50 = _anchored_sums(closes50, c)

            sign = NAN if ret1 != ret1 else (1.0 if ret1 > 0 else (-1.0 if ret1 < 0 else 0.0))
            tpv, signed_v = (h + low + c) / 3 * v, sign * v
            if len(cs) == 20:
                d = cs.popleft() - ca
                c1 -= d
                c2 -= d * d
                x, x2 = rs.popleft(), r2s.popleft()
                if x == x:
                    r1 -= x
                    r2 -= x2
                else:
                    r_unknown -= 1
                tpv_sum -= tpvs.popleft()
                d = vs.popleft() - va
                v1 -= d
                v2 -= d * d
                x = ks.popleft()
                if x == x:
                    k1 -= x
                else:
                    k_unknown -= 1
                x = ss.popleft()
                if x == x:
                    s1 -= x
                else:
                    s_unknown -= 1
            cs.append(c)
            rs.append(ret1)
            r2s.append(ret1 * ret1)
            tpvs.append(tpv)
            vs.append(v)
            ks.append(trade_count)
            ss.append(signed_v)
            d = c - ca
            c1 += d
            c2 += d * d
            if ret1 == ret1:
                r1 += ret1
                r2 += r2s[-1]
            else:
                r_unknown += 1
            tpv_sum += tpv
            d = v - va
            v1 += d
            v2 += d * d
            if trade_count == trade_count:
                k1 += trade_count
            else:
                k_unknown += 1
            if signed_v == signed_v:
                s1 += signed_v
            else:
                s_unknown += 1
            since20 += 1
            if since20 >= 20:
                since20, ca, va = 0, c, v
                c1, c2 = _anchored_sums(cs, c)
                v1, v2 = _anchored_sums(vs, v)
                r1, r2 = _known_sum(rs, r_unknown), _known_sum(r2s, r_unknown)  # NaN returns, NaN squares
                tpv_sum = math.fsum(tpvs)
                k1, s1 = _known_sum(ks, k_unknown), _known_sum(ss, s_unknown)

            if len(volumes5) == 5:
                x = volumes5.popleft()
                if x != x:
                    unknown5 -= 1
                else:
                    total5 -= x
            volumes5.append(v)
            if v != v:
                unknown5 += 1
            else:
                total5 += v
            since5 += 1
            if since5 >= 5:
                since5, total5 = 0, _known_sum(volumes5, unknown5)

            while highs and highs[-1][1] <= h:
                highs.pop()
            highs.append((n, h))
            if highs[0][0] <= n - 20:
                highs.popleft()
            while lows and lows[-1][1] >= low:
                lows.pop()
            lows.append((n, low))
            if lows[0][0] <= n - 20:
                lows.popleft()
            highest, lowest = highs[0][1], lows[0][1]

            # pandas' ewm(alpha, adjust=False) steps: y <- (keep y + alpha x) / (keep + alpha),
            # the first value as it is, and an unchanged value left unchanged, as pandas does
            ema12 = c if ema12 != ema12 else (ema12 if ema12 == c else (_K12 * ema12 + _A12 * c) / _D12)
            ema26 = c if ema26 != ema26 else (ema26 if ema26 == c else (_K26 * ema26 + _A26 * c) / _D26)
            if n >= 26:
                macd = ema12 - ema26
                y = signal9
                signal9 = signal = macd if y != y else (y if y == macd else (_K9 * y + _A9 * macd) / _D9)
            else:
                macd = signal = NAN
            diff = c - prev_close if n >= 2 else 0.0
            prev_close = c
            up, down = (diff if diff > 0 else 0.0), (-diff if diff < 0 else 0.0)
            up14 = up if up14 != up14 else (up14 if up14 == up else (_K14 * up14 + _A14 * up) / _D14)
            down14 = down if down14 != down14 else (down14 if down14 == down else (_K14 * down14 + _A14 * down) / _D14)
            up7 = up if up7 != up7 else (up7 if up7 == up else (_K7 * up7 + _A7 * up) / _D7)
            down7 = down if down7 != down7 else (down7 if down7 == down else (_K7 * down7 + _A7 * down) / _D7)
            rsi14 = 1.0 if down14 == 0.0 else (100.0 - 100.0 / (1.0 + up14 / down14)) / 100.0
            rsi7 = 1.0 if down7 == 0.0 else (100.0 - 100.0 / (1.0 + up7 / down7)) / 100.0

            if n >= 20:
                volume_mean20 = va + v1 / 20
                volume_sum20 = volume_mean20 * 20
                sma20 = ca + c1 / 20
                var = (c2 - c1 * c1 / 20) / 20  # population variances (ddof 0), floored at 0
                std20 = math.sqrt(var) if var > 0.0 else 0.0
                var = (v2 - v1 * v1 / 20) / 20
                vol_std = math.sqrt(var) if var > 0.0 else 0.0
                count_ratio = NAN if k_unknown else _ratio(trade_count, k1 / 20)  # k_unknown counts this one
                var = (r2 - r1 * r1 / 20) / 19  # sample variance (ddof 1)
                volatility = NAN if r_unknown else (math.sqrt(var) if var > 0.0 else 0.0)
                signed = NAN if s_unknown else _ratio(s1, volume_sum20)
            else:
                volume_mean20 = volume_sum20 = sma20 = std20 = vol_std = count_ratio = volatility = signed = NAN

            previous, prev_ref = prev_ref, ref_close
            ref_ret = math.log(ref_close) - math.log(previous) if ref_close > 0.0 and previous > 0.0 else NAN
            if ret1 != ret1 or ref_ret != ref_ret:
                if pairs.xs:
                    pairs = _CoMoments(30)  # an unknown pair breaks the window
                corr = NAN
            else:
                pairs.push(ret1, ref_ret)
                corr = pairs.correlation() if len(pairs.xs) == 30 else NAN

            if bid == bid or ask == ask or bid_qty == bid_qty or ask_qty == ask_qty:
                spread = _ratio(ask - bid, (ask + bid) / 2)
                imbalance = _ratio(bid_qty - ask_qty, bid_qty + ask_qty)
                depth = _ratio(bid_qty + ask_qty, volume_mean20)
            else:  # no book: each ratio's numerator is NaN
                spread = imbalance = depth = NAN
            flow = NAN if buy_volume != buy_volume else _ratio(2 * buy_volume - v, v)

            values = [
                ret1,
                ret5,
                ret20,
                (c - o) / o,
                (h - (o if o > c else c)) / c,
                ((o if o < c else c) - low) / c,
                (h - low) / c,
                volatility,
                _ratio(tpv_sum, volume_sum20 * c) - 1.0,
                _ratio(c - lowest, highest - lowest),
                _ratio(v, volume_mean20),
                _ratio(v - volume_mean20, vol_std),
                _ratio(total5 / 5, volume_mean20),
                count_ratio,
                signed,
                rsi14,
                rsi7,
                macd / c,
                signal / c,
                sma20 / c - 1.0,
                (anchor50 + sum50 / 50) / c - 1.0 if n >= 50 else NAN,
                ema12 / c - 1.0,
                ema26 / c - 1.0,
                (sma20 + 2 * std20) / c - 1.0,
                (sma20 - 2 * std20) / c - 1.0,
                spread,
                imbalance,
                depth,
                flow,
                corr,
            ]
            if n >= MAX_WARMUP:  # steady state: NaN already means "not valid"; only inf to drop
                if INF in values or -INF in values:
                    values = [x if x - x == 0.0 else NAN for x in values]  # x - x is NaN for NaN and inf
            else:
                values = [x if n >= w and x - x == 0.0 else NAN for x, w in zip(values, WARMUPS, strict=True)]
            bar = yield values


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
        self.sxx = math.fsum([d * d for d in dxs])
        self.syy = math.fsum([d * d for d in dys])
        self.sxy = math.fsum([a * b for a, b in zip(dxs, dys, strict=True)])

    def correlation(self) -> float:
        n = len(self.xs)
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        if vx <= 0.0 or vy <= 0.0:
            return NAN
        return (self.sxy - self.sx * self.sy / n) / math.sqrt(vx * vy)
