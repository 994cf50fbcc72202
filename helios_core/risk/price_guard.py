"""The price guard: a price that jumps too far from the pair's last good price is held back
(quarantined) until the market confirms it, so one bad tick cannot move a candle, a mark, a
stop or an exit.

A price is plausible when its log distance from the reference (the last good price) is within
the band: the wider of `max_jump` and `sigmas` standard deviations of the pair's returns over
the time since the reference (at least a minute). Sigma comes from plausible candle closes
only, so quarantined prices never widen the band. A suspect price is held; it is released, with
every held price at its level, when `confirm_ticks` independent prices in a row agree with
that level (an item's `key` says what is the same evidence: a repeat of the same key is held
but confirms nothing) or a fresh order book agrees with it; a plausible price before that drops
whatever was held (a spike that came back). Before the pair has any price the first one is the
reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
MINUTE = 60.0
SIGMA_SPAN = 60  # candles in the EWMA of squared returns
SIGMA_MIN_CANDLES = 10  # before this many returns the band is `max_jump` alone
WICK = 3.0  # a candle's high or low may stray this many bands, its close only one


@dataclass(frozen=True, slots=True)
class GuardConfig:
    max_jump: float = 0.03
    sigmas: float = 10.0
    confirm_ticks: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.max_jump < 1:
            raise ValueError(f"max_jump must be in (0, 1), got {self.max_jump}")
        if not 0 < self.sigmas < 1000:
            raise ValueError(f"sigmas must be in (0, 1000), got {self.sigmas}")
        if not 1 <= self.confirm_ticks <= 100:
            raise ValueError(f"confirm_ticks must be in [1, 100], got {self.confirm_ticks}")


@dataclass(slots=True)
class Admission(Generic[T]):
    """What one price did: the items to use now (in order), and how the episode moved."""

    released: list[T] = field(default_factory=list)
    quarantined: bool = False  # this price started a quarantine
    dropped: int = 0  # held prices thrown away (a spike that came back, or a new suspect level)
    confirmed: int = 0  # held prices released as a confirmed move


class PriceGuard(Generic[T]):
    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self.reference: float | None = None
        self.at = -math.inf  # when the reference was seen
        self._held: list[tuple[T, float, object]] = []  # item, price, key
        self._var_s = 0.0  # variance of log returns per second
        self._returns = 0
        self._last_close: tuple[float, float] | None = None  # (close time, close)
        self._odd_candles = 0  # implausible closes in a row
        self.quarantined = 0  # prices held, ever
        self.dropped = 0
        self.confirmed = 0

    @property
    def holding(self) -> int:
        return len(self._held)

    def band(self, now: float) -> float:
        """The largest plausible log move from the reference at `now`."""
        if self._returns < SIGMA_MIN_CANDLES:
            return math.log1p(self.config.max_jump)
        elapsed = max(MINUTE, now - self.at) if math.isfinite(now) else MINUTE
        return max(math.log1p(self.config.max_jump), self.config.sigmas * math.sqrt(self._var_s * elapsed))

    def plausible(self, price: float, now: float) -> bool:
        """Within the band of the reference; before there is one, any positive finite price."""
        if self.reference is None:
            return price > 0 and math.isfinite(price)
        return self._agrees(price, self.reference, now)

    def wick_range(self, now: float) -> tuple[float, float] | None:
        """The prices a candle's open, high or low may reach at `now` (None: no reference yet)."""
        if self.reference is None:
            return None
        reach = self.band(now) * WICK
        return self.reference * math.exp(-reach), self.reference * math.exp(reach)

    def seed(self, price: float, at: float) -> None:
        """A price known good from elsewhere (a closed candle, a restored position's mark), unless
        the reference is newer."""
        if price > 0 and math.isfinite(price) and at >= self.at:
            self.reference, self.at = price, at

    def _accept(self, price: float, now: float) -> None:
        # In arrival order: one event stamped ahead of the clock must not freeze the reference.
        self.reference, self.at = price, max(now, self.at) if math.isfinite(now) else self.at

    def on_candle(self, close_at: float, close: float) -> None:
        """A closed candle: a plausible close feeds sigma and is a good price; one that is not (a
        backfilled candle the exchange got wrong) moves neither, unless `confirm_ticks` candles in
        a row say the market is there now."""
        if not self.plausible(close, close_at):
            self._odd_candles += 1
            if self._odd_candles < self.config.confirm_ticks:
                return
        self._odd_candles = 0
        last = self._last_close
        if last is not None and close_at > last[0] and close > 0 and last[1] > 0:
            r2 = math.log(close / last[1]) ** 2 / (close_at - last[0])
            alpha = 2.0 / (SIGMA_SPAN + 1)
            self._var_s = r2 if self._returns == 0 else (1 - alpha) * self._var_s + alpha * r2
            self._returns += 1
        self._last_close = (close_at, close)
        self.seed(close, close_at)

    def admit(
        self, item: T, price: float, now: float, book_mid: float | None = None, key: object = None
    ) -> Admission[T]:
        """Pass `item` (priced `price` at `now`) on, hold it, or release what it confirms. `key`
        identifies its evidence (None: every item is its own)."""
        out: Admission[T] = Admission()
        if self.plausible(price, now):
            out.dropped = self.drop()
            self._accept(price, now)
            out.released.append(item)
            return out
        if book_mid is not None and self._agrees(price, book_mid, now):
            return self._confirm(item, price, now, out)  # the book moved with it: a real move
        if self._held and not self._agrees(price, self._held[0][1], now):
            out.dropped = self.drop()  # a different level: the earlier suspects agreed with nothing
        self.quarantined += 1
        out.quarantined = not self._held
        self._held.append((item, price, object() if key is None else key))
        if len({k for _, _, k in self._held}) >= self.config.confirm_ticks:
            return self._confirm(None, price, now, out)
        return out

    def _agrees(self, price: float, level: float, now: float) -> bool:
        """Whether `price` is within the band of `level`; never for a price or level that is not
        positive and finite."""
        if not (price > 0 and level > 0 and math.isfinite(price) and math.isfinite(level)):
            return False
        return abs(math.log(price / level)) <= self.band(now)

    def _confirm(self, item: T | None, price: float, now: float, out: Admission[T]) -> Admission[T]:
        kept = [held for held, p, _ in self._held if self._agrees(p, price, now)]
        out.dropped += len(self._held) - len(kept)
        self.dropped += len(self._held) - len(kept)
        out.confirmed = len(kept)
        self.confirmed += len(kept)
        self._held.clear()
        out.released.extend(kept)
        if item is not None:
            out.released.append(item)
        self._accept(price, now)
        return out

    def drop(self) -> int:
        """Throw away what is held (a spike that came back, or a hole in the stream after it)."""
        n = len(self._held)
        self.dropped += n
        self._held.clear()
        return n
