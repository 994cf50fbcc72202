"""Clocks the engine is given: the machine's, or the exchange's as its messages tell it.

`ExchangeClock` follows the newest exchange timestamp seen. A replay (the simulator, a
backtest) runs faster than real time, and the engine must close candles on the replayed
exchange's time, not on the machine's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds, or NaN while the clock does not know the time yet."""
        ...

    def observe(self, ts: float) -> None:
        """An exchange timestamp (epoch seconds) arrived."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def observe(self, ts: float) -> None:
        return None


class ExchangeClock:
    def __init__(self) -> None:
        self._now = float("nan")

    def now(self) -> float:
        return self._now

    def observe(self, ts: float) -> None:
        if not ts <= self._now:  # also true while _now is NaN
            self._now = ts


def as_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
