"""What a Claude call costs and the ceilings on it: a versioned price table (USD per million
tokens) and a budget that reserves a call's worst case before it is sent, so neither one call
nor a day's calls can pass its ceiling, then settles the reservation at what the call cost.

The day is the UTC date of the engine's `now` (epoch seconds, the caller's clock); nothing here
reads a clock, so a backtest or a replay spends the budget of the day it replays."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

PRICES_VERSION = "2026-11"
PER = 1_000_000  # prices are per million tokens
BYTES_PER_TOKEN = 3  # fewer bytes a token than any tokenizer gives English or JSON: an upper bound


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; `cache_write` is the 5-minute cache's write price."""

    input: float
    output: float
    cache_write: float
    cache_read: float


PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
}

_SNAPSHOT = re.compile(r"-\d{8}$")  # claude-sonnet-4-5-20250929: a dated snapshot of an alias


class UnknownModelError(ValueError):
    """A model the price table has no price for: a call to it could not be costed or capped."""


def price(model: str) -> Price:
    """The model's price, a dated snapshot priced as its alias; `UnknownModelError` otherwise."""
    found = PRICES.get(model) or PRICES.get(_SNAPSHOT.sub("", model))
    if found is None:
        known = ", ".join(sorted(PRICES))
        raise UnknownModelError(f"no price for model {model!r} in price table {PRICES_VERSION} (known: {known})")
    return found


def cost(model: str, input: int, output: int, cache_creation: int = 0, cache_read: int = 0) -> float:
    """USD for a call's tokens; `input` excludes the cached tokens, as the API's usage counts it."""
    p = price(model)
    return (input * p.input + output * p.output + cache_creation * p.cache_write + cache_read * p.cache_read) / PER


def estimate_input_tokens(*texts: str) -> int:
    """An upper-bound estimate of the input tokens of `texts` (system, user, tool schema JSON),
    counted here, not by the API (its count endpoint would be a second call on every decision):
    one token per `BYTES_PER_TOKEN` UTF-8 bytes, rounded up, over-counts real tokenizers, so a
    ceiling checked against it errs toward refusing."""
    return sum(math.ceil(len(text.encode()) / BYTES_PER_TOKEN) for text in texts)


def worst_case(model: str, input_tokens: int, max_tokens: int) -> float:
    """A call's most: every input token written to the cache at the dearest input price (a
    cache write costs more than a plain input token) and `max_tokens` of output."""
    p = price(model)
    return (input_tokens * max(p.input, p.cache_write) + max_tokens * p.output) / PER


@dataclass(frozen=True, slots=True)
class Reservation:
    day: date
    usd: float


class Budget:
    """The per-call and per-day ceilings (USD). A call reserves its worst case first and is
    refused when the reservation would pass either ceiling; `settle` then replaces the
    reservation by the actual cost. Zero ceilings mean no calls at all."""

    def __init__(self, call_max_usd: float, day_max_usd: float) -> None:
        if not (call_max_usd >= 0 and day_max_usd >= 0):  # NaN fails too
            raise ValueError("budget ceilings must be zero or more")
        self.call_max_usd = call_max_usd
        self.day_max_usd = day_max_usd
        self._day: date | None = None
        self._spent = 0.0  # settled today
        self._held = 0.0  # reserved today, not yet settled
        self.refusals = 0

    def reserve(self, estimate_usd: float, now: float) -> Reservation | str:
        """A reservation of `estimate_usd` on `now`'s UTC day, or the reason it is refused."""
        self._roll(now)
        if not math.isfinite(estimate_usd) or estimate_usd < 0:
            return self._refuse(f"budget: call estimate {estimate_usd!r} is not a cost")
        if self.call_max_usd <= 0 or self.day_max_usd <= 0:
            return self._refuse("budget: the ceilings are zero: no calls")
        if estimate_usd > self.call_max_usd:
            return self._refuse(
                f"budget: call estimate ${estimate_usd:.4f} above the per-call ceiling ${self.call_max_usd:.2f}"
            )
        committed = self._spent + self._held
        if committed + estimate_usd > self.day_max_usd:
            return self._refuse(
                f"budget: the day's spend ${committed:.2f} + estimate ${estimate_usd:.4f}"
                f" would pass the day's ceiling ${self.day_max_usd:.2f}"
            )
        self._held += estimate_usd
        assert self._day is not None  # noqa: S101 -- _roll set it
        return Reservation(self._day, estimate_usd)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """The reservation replaced by what the call cost. A reservation of a day already
        over (a call across midnight) is charged to the day it was made on, which is gone."""
        if reservation.day != self._day:
            return
        self._held = max(0.0, self._held - reservation.usd)
        self._spent += max(0.0, actual_usd) if math.isfinite(actual_usd) else reservation.usd

    def restore(self, spent_usd: float, now: float) -> None:
        """What the ledger says was spent on `now`'s UTC day before a restart."""
        self._roll(now)
        if math.isfinite(spent_usd) and spent_usd > self._spent:
            self._spent = spent_usd

    def spent_today(self, now: float) -> float:
        """Settled and reserved spend of `now`'s UTC day."""
        self._roll(now)
        return self._spent + self._held

    def snapshot(self, now: float) -> dict[str, Any]:
        self._roll(now)
        return {
            "day": self._day.isoformat() if self._day else None,
            "spent_usd": self._spent,
            "reserved_usd": self._held,
            "call_max_usd": self.call_max_usd,
            "day_max_usd": self.day_max_usd,
            "left_usd": max(0.0, self.day_max_usd - self._spent - self._held),
            "refusals": self.refusals,
            "prices_version": PRICES_VERSION,
        }

    def _roll(self, now: float) -> None:
        day = datetime.fromtimestamp(now, UTC).date()
        if day != self._day:
            self._day, self._spent, self._held = day, 0.0, 0.0

    def _refuse(self, reason: str) -> str:
        self.refusals += 1
        return reason
