"""Target weights and the portfolio's weights measured against them.

A weight is a pair's gross exposure (quantity x mark, either side) over equity: the targets are
risk budgets for longs and shorts alike. Targets are long-only fractions that sum to 1; they are
computed on the batch side (helios_dagster.allocation) and read here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helios_core.trading.orders import require_aware
from helios_core.trading.position import Position

SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Targets:
    """Weights per pair, what computed them (`method`) and, when the optimisation could not be
    used, the rule that replaced it and why (`fallback`); `inputs` says what it read."""

    weights: Mapping[str, float]
    computed_at: datetime  # when the computation ran (the engine's clock in a backtest)
    as_of: datetime  # the end of the data it read: nothing after it was used
    method: str
    fallback: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_aware("computed_at", self.computed_at)
        require_aware("as_of", self.as_of)
        bad = {p: w for p, w in self.weights.items() if not (math.isfinite(w) and 0.0 <= w <= 1.0 + SUM_TOLERANCE)}
        if bad:
            raise ValueError(f"target weights must lie in [0, 1], got {bad}")
        total = sum(self.weights.values())
        if self.weights and abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"target weights must sum to 1, got {total:.9f}")

    def weight(self, pair: str) -> float:
        """A pair the targets do not name gets none: the allocation did not consider it."""
        return self.weights.get(pair, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "computed_at": self.computed_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "method": self.method,
            "fallback": self.fallback,
            "inputs": dict(self.inputs),
        }


def exposure(position: Position, mark: float | None) -> float:
    price = mark if mark is not None and mark > 0 and math.isfinite(mark) else position.entry_price
    return abs(position.quantity * price)


def weights(positions: Iterable[Position], marks: Mapping[str, float], equity: float) -> dict[str, float]:
    """Gross exposure per pair over equity; empty when equity is not positive (nothing to weigh)."""
    if not equity > 0:
        return {}
    out: dict[str, float] = {}
    for p in positions:
        out[p.pair] = out.get(p.pair, 0.0) + exposure(p, marks.get(p.pair)) / equity
    return out
