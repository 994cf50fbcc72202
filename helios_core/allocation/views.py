"""The model's predictions as Black-Litterman views: one absolute view per pair.

A prediction says BUY, SELL or HOLD over a horizon (12 x 5m by default), with probabilities.
Its expected return over the horizon is (p_buy - p_sell) x the label's move (2 %), the return a
BUY or SELL label stands for; the view is the mean of the window's predictions, taken as the
day's return (the covariance's period): the model's edge once a day, not compounded over the
day's 24 horizons, which gave views of 14 %/day on the sample pairs and swamped the prior.
Its confidence (Idzorek's, 0..1) is how far the predictions' top probability stands above a
uniform guess, (p_max - 1/3) / (2/3): a model that cannot tell the classes apart has no view at
all (confidence 0: the prior stands).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

UNIFORM = 1.0 / 3.0


@dataclass(frozen=True, slots=True)
class View:
    pair: str
    expected_return: float  # per day, the covariance's period
    confidence: float  # 0..1
    predictions: int


def confidence_of(p_buy: float, p_sell: float, p_hold: float) -> float:
    top = max(p_buy, p_sell, p_hold)
    return min(1.0, max(0.0, (top - UNIFORM) / (1.0 - UNIFORM)))


def views(predictions: Iterable[tuple[str, float, float, float]], move: float) -> dict[str, View]:
    """(pair, p_buy, p_sell, p_hold) rows, oldest first or not: the mean does not care.
    A row with a non-finite probability is skipped, never averaged in."""
    sums: dict[str, list[float]] = {}
    for pair, p_buy, p_sell, p_hold in predictions:
        if not all(math.isfinite(p) for p in (p_buy, p_sell, p_hold)):
            continue
        acc = sums.setdefault(pair, [0.0, 0.0, 0.0])
        acc[0] += (p_buy - p_sell) * move
        acc[1] += confidence_of(p_buy, p_sell, p_hold)
        acc[2] += 1
    return {pair: View(pair, r / n, c / n, int(n)) for pair, (r, c, n) in sums.items() if n > 0}
