"""Closed candles of one pair, built from the trade stream (or the exchange's buckets), each
`step` seconds long: the base timeframe the kernel decides on (the model's, 1m by default).

Policy (docs/live.md):
- A candle closes when a trade of a later candle arrives, or when the clock passes its end
  plus a grace period (`HELIOS_LIVE_CLOSE_GRACE_S`, default 2 s) for trades still in flight.
- A candle's span with no trade has no candle, as in the lake (`trades_to_candles`): the
  features treat it as a gap.
- A late trade, one for a candle already closed, is dropped and counted; a closed candle is
  never amended, because features and a prediction have already used it.
The bars match `helios_core.candles.trades_to_candles` on the same trades (tests/parity).
"""

from __future__ import annotations

import math

from helios_core.features.streaming import NAN, Bar
from helios_core.market import Bucket, TradeTick

STEP = 60  # the default base candle, seconds: 1m


class CandleBuilder:
    """One pair's open candle; `on_trade` / `on_bucket` / `advance` return the bar they closed."""

    __slots__ = ("grace", "step", "current", "closed_until", "late")

    def __init__(self, grace_s: float = 2.0, step: int = STEP) -> None:
        self.grace = grace_s
        self.step = step
        # start, open, high, low, close, volume, trade count, buy volume
        self.current: list[float] | None = None
        self.closed_until = -math.inf  # every candle before this is final
        self.late = 0

    def on_trade(self, trade: TradeTick) -> Bar | None:
        price, quantity = trade.price, trade.quantity
        start = trade.ts - trade.ts % self.step
        if start < self.closed_until:
            self.late += 1
            return None
        cur = self.current
        closed = None
        if cur is not None and start != cur[0]:
            closed = self._close()
            cur = None
        buy = NAN if trade.is_buy is None else quantity if trade.is_buy else 0.0
        if cur is None:
            self.current = [start, price, price, price, price, quantity, 1.0, buy]
            self.closed_until = start
            return closed
        if price > cur[2]:
            cur[2] = price
        elif price < cur[3]:
            cur[3] = price
        cur[4] = price
        cur[5] += quantity
        cur[6] += 1.0
        cur[7] += buy  # one trade of unknown side makes the candle's buy volume unknown
        return closed

    def on_bucket(self, bucket: Bucket) -> Bar | None:
        """Buckets carry the candle so far: the latest update of a candle replaces the earlier ones.
        A bucket of another period than the base is not this pair's candle: ignored."""
        if bucket.period != self.step:
            return None
        if bucket.start < self.closed_until:
            self.late += 1
            return None
        closed = None
        if self.current is not None and bucket.start != self.current[0]:
            closed = self._close()
        b = bucket
        self.current = [float(b.start), b.open, b.high, b.low, b.close, b.volume, NAN, NAN]
        self.closed_until = b.start
        return closed

    def advance(self, now: float) -> Bar | None:
        """The clock (epoch seconds) moved on: close the open candle once its grace is over."""
        horizon = now - self.grace
        closed = None
        cur = self.current
        if cur is not None and horizon >= cur[0] + self.step:
            closed = self._close()
        final = horizon - horizon % self.step
        if final > self.closed_until and self.current is None:
            self.closed_until = final
        return closed

    def discard_open(self) -> float:
        """Forget the open candle (trades were missed); return where the history is final up to."""
        if self.current is not None:
            self.closed_until = self.current[0]
            self.current = None
        return self.closed_until

    def resume_at(self, start: float) -> None:
        """Candles before `start` came from elsewhere (a backfill): treat them as closed."""
        self.current = None
        self.closed_until = max(self.closed_until, start)

    def _close(self) -> Bar:
        cur = self.current
        assert cur is not None  # noqa: S101 -- callers check; a bare guard for mypy
        self.current = None
        self.closed_until = cur[0] + self.step
        return Bar(int(cur[0]), cur[1], cur[2], cur[3], cur[4], cur[5], cur[6], cur[7])
