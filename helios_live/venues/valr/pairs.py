"""VALR's constraints on a pair's orders (`GET /v1/public/pairs`): an order's quantity is
rounded down to the pair's base decimals, a limit price to its tick, and an order below the
minimum base or quote amount is refused here, as a recorded denial, rather than by the exchange.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from helios_core.errors import SourceError


@dataclass(frozen=True, slots=True)
class PairRules:
    pair: str
    base: str
    quote: str
    min_base: Decimal
    max_base: Decimal
    min_quote: Decimal
    tick: Decimal
    base_decimals: int
    active: bool = True

    @classmethod
    def parse(cls, item: Any) -> PairRules:
        try:
            return cls(
                pair=str(item["symbol"]),
                base=str(item["baseCurrency"]),
                quote=str(item["quoteCurrency"]),
                min_base=Decimal(str(item["minBaseAmount"])),
                max_base=Decimal(str(item["maxBaseAmount"])),
                min_quote=Decimal(str(item.get("minQuoteAmount", "0"))),
                tick=Decimal(str(item["tickSize"])),
                base_decimals=int(item["baseDecimalPlaces"]),
                active=bool(item.get("active", True)),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise SourceError(f"malformed VALR pair description {str(item)[:200]}: {exc!r}") from None

    def quantity(self, value: float) -> Decimal:
        """`value` rounded down to the pair's base decimals (never up: never more than sized)."""
        if not math.isfinite(value) or value <= 0:
            return Decimal(0)
        step = Decimal(1).scaleb(-self.base_decimals)
        return Decimal(repr(value)).quantize(step, rounding=ROUND_DOWN)

    def price(self, value: float) -> Decimal:
        """`value` rounded to the nearest tick."""
        ticks = (Decimal(repr(value)) / self.tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return (ticks * self.tick).normalize()

    def refusal(self, quantity: Decimal, price: float) -> str | None:
        """Why VALR would refuse an order of `quantity` at about `price`, or None."""
        if not self.active:
            return f"{self.pair} is not active on VALR"
        if quantity < self.min_base:
            return f"quantity {quantity} {self.base} is below VALR's minimum {self.min_base} for {self.pair}"
        if quantity > self.max_base:
            return f"quantity {quantity} {self.base} is above VALR's maximum {self.max_base} for {self.pair}"
        if price > 0 and quantity * Decimal(repr(price)) < self.min_quote:
            return f"notional below VALR's minimum {self.min_quote} {self.quote} for {self.pair}"
        return None


def text(value: Decimal) -> str:
    """A decimal as VALR reads it: plain notation, no exponent, no trailing zeros."""
    return format(value.normalize(), "f")
