"""Canonical timeframes: `1m`, `5m`, `15m`, `1h`, `4h`, `1d`.

A candle's `ts` is its open time in UTC; it covers `[ts, ts + duration)` and is closed
once that end has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from helios_core.errors import ConfigurationError

_UNITS = {"m": 60, "h": 3600, "d": 86400}
CANONICAL = ("1m", "5m", "15m", "1h", "4h", "1d")


@dataclass(frozen=True, order=True)
class Timeframe:
    """A candle width; ordered by length so `Timeframe("1m") < Timeframe("5m")`."""

    seconds: int

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Parse a canonical string such as `5m`; anything else is a configuration error."""
        if text not in CANONICAL:
            raise ConfigurationError(f"unknown timeframe {text!r}; expected one of {CANONICAL}")
        return cls(int(text[:-1]) * _UNITS[text[-1]])

    @classmethod
    def from_seconds(cls, seconds: int) -> Timeframe:
        """The canonical timeframe of this width; raises for widths Helios does not name."""
        tf = cls(seconds)
        if str(tf) not in CANONICAL:
            raise ConfigurationError(f"no canonical timeframe is {seconds} s wide")
        return tf

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def pandas_freq(self) -> str:
        return f"{self.seconds}s"

    def floor(self, ts: datetime) -> datetime:
        """The open time of the candle containing `ts` (UTC-aware in, UTC-aware out)."""
        if ts.tzinfo is None:
            raise ValueError("naive datetime: Helios uses timezone-aware UTC only")
        epoch = int(ts.timestamp())
        return datetime.fromtimestamp(epoch - epoch % self.seconds, tz=UTC)

    def divides(self, other: Timeframe) -> bool:
        """True when candles of `other` are made of whole candles of this timeframe."""
        return other.seconds % self.seconds == 0

    def __str__(self) -> str:
        for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"


def as_datetime(ts: float) -> datetime:
    """The aware UTC datetime of epoch seconds `ts` (a conversion, not a clock read)."""
    return datetime.fromtimestamp(ts, UTC)
