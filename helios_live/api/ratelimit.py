"""Token buckets in memory, one per key (a client address, a principal, a user name at login).

A bucket holds a minute's worth of requests and refills continuously: a client may burst its
whole minute at once, then gets one request per `60 / per_min` seconds. Buckets are per process;
one live process serves the API (ARCHITECTURE.md), so that is the service's limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MAX_KEYS = 10_000  # beyond this many tracked keys, those whose buckets are full again are forgotten


class RateLimiter:
    def __init__(self, per_min: int, now: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_min)
        self.refill_per_s = per_min / 60.0
        self.now = now
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.refill_per_s)

    def take(self, *keys: str) -> float | None:
        """Take one request from each key's bucket: None when all had one, else the seconds until
        the emptiest refills one (nothing is taken then)."""
        now = self.now()
        tokens = {key: self._tokens(key, now) for key in keys}
        short = min(tokens.values(), default=self.capacity)
        if short < 1.0:
            return (1.0 - short) / self.refill_per_s
        if len(self._buckets) >= MAX_KEYS:
            self._forget_full(now)
        for key, left in tokens.items():
            self._buckets[key] = (left - 1.0, now)
        return None

    def _forget_full(self, now: float) -> None:
        self._buckets = {key: b for key, b in self._buckets.items() if self._tokens(key, now) < self.capacity}


def retry_after(seconds: float) -> str:
    """The `Retry-After` header's value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
