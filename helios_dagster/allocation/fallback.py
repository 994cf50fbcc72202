"""The per-pair cap and the weights used when the optimisation cannot be: the volume prior
capped, or equal weights."""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from helios_dagster.allocation.estimates import prior_weights

TOLERANCE = 1e-12


def effective_cap(max_weight: float, n: int) -> tuple[float, str | None]:
    """With n pairs each held at most `max_weight`, weights summing to 1 need n x max_weight >= 1;
    below that the cap is raised to 1/n (every pair equal), and the reason says so."""
    if n <= 0:
        return max_weight, None
    if n * max_weight < 1.0 - 1e-9:
        return 1.0 / n, f"{n} pairs x max_weight {max_weight:g} < 1: the cap is 1/{n}"
    return max_weight, None


def capped(weights: pd.Series, cap: float) -> pd.Series:
    """Normalise, then cap each weight, handing the excess to the uncapped pairs pro rata to their
    weights until none is above the cap. Needs cap x (pairs with weight > 0) >= 1; pairs with
    weight 0 stay at 0."""
    w = weights.clip(lower=0.0).astype(float)
    total = float(w.sum())
    if not (total > 0 and math.isfinite(total)):
        raise ValueError("no positive weight to cap")
    w = w / total
    for _ in range(len(w) + 1):  # each pass caps at least one more pair, or ends
        over = w > cap + TOLERANCE
        if not over.any():
            break
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = (w < cap - TOLERANCE) & (w > 0)
        room = float(w[free].sum())
        if not room > 0:
            raise ValueError(f"the cap {cap:g} cannot hold: {int((w > 0).sum())} pairs hold weight")
        w[free] = w[free] * (1.0 + excess / room)
    return w.clip(upper=cap)


class Fallback(NamedTuple):
    weights: pd.Series
    method: str
    cap: float
    cap_note: str | None
    prior: str  # what the prior weights came from: "volume", or why equal


def fallback_weights(pairs: list[str], volumes: pd.DataFrame, closes: pd.DataFrame, max_weight: float) -> Fallback:
    """The volume prior over the pairs that have volume, capped (the cap raised to 1/n of those
    when it cannot hold); equal weights over the pairs with any close when no volume can be used
    (over every pair when none has a close)."""
    weights, source = prior_weights(volumes.reindex(columns=pairs))
    if source == "volume":
        cap, note = effective_cap(max_weight, int((weights > 0).sum()))
        return Fallback(capped(weights, cap).reindex(pairs, fill_value=0.0), "fallback/volume_prior", cap, note, source)
    with_data = [p for p in pairs if p in closes.columns and closes[p].notna().any()] or pairs
    cap, note = effective_cap(max_weight, len(with_data))
    equal = pd.Series(0.0, index=pairs)
    equal[with_data] = 1.0 / len(with_data)
    return Fallback(equal, "fallback/equal", cap, note, source)
