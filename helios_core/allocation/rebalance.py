"""Rebalancing against targets: which positions to trim, and how far, and the entry cap.

Rebalancing only ever reduces: a pair above its target by more than the threshold is trimmed
back to its target (a target of 0 closes it); a pair below target is left to the model's next
entries, never bought. An emergency trims the pairs a risk event names to a limit of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from helios_core.allocation.targets import exposure
from helios_core.trading.position import Position

DUST = 1e-9  # a share of a position too small to be worth an order


class Reason(StrEnum):
    DAILY = "DAILY"  # the daily check: drift above the threshold
    WEEKLY = "WEEKLY"  # Monday's pass, with the tighter threshold
    EMERGENCY = "EMERGENCY"  # a risk event: the pairs it names, reduce only


@dataclass(frozen=True, slots=True)
class Trim:
    """Sell `quantity` of position `key`; `close` when that is all of it."""

    key: str
    pair: str
    quantity: float
    weight_before: float
    weight_after: float

    @property
    def close(self) -> bool:
        return self.weight_after <= DUST


def trims(
    positions: Iterable[Position], marks: Mapping[str, float], equity: float, limits: Mapping[str, float]
) -> list[Trim]:
    """Bring each position whose pair is above its limit (a weight of equity) down to it."""
    if not equity > 0:
        return []
    out = []
    for p in sorted(positions, key=lambda p: (p.pair, p.key)):
        if p.pair not in limits:
            continue
        weight = exposure(p, marks.get(p.pair)) / equity
        limit = max(0.0, limits[p.pair])
        if weight <= limit + DUST or weight <= 0:
            continue
        share = 1.0 - limit / weight
        quantity = p.quantity if limit <= DUST else p.quantity * share
        if quantity > DUST * p.quantity:
            out.append(Trim(p.key, p.pair, quantity, weight, limit))
    return out


def drift_limits(weights: Mapping[str, float], targets: Mapping[str, float], threshold: float) -> dict[str, float]:
    """The pairs whose weight is above target + threshold, each with its target: a pair the targets
    do not name has a target of 0."""
    return {pair: targets.get(pair, 0.0) for pair, w in weights.items() if w > targets.get(pair, 0.0) + threshold}


def emergency_limits(
    weights: Mapping[str, float], targets: Mapping[str, float] | None, pairs: Iterable[str], factor: float
) -> dict[str, float]:
    """Each named pair's limit: its weight now (or its target, when lower) times `factor`; never
    above where it is, so an emergency only reduces."""
    out = {}
    for pair in pairs:
        now = weights.get(pair, 0.0)
        base = now if targets is None else min(now, targets.get(pair, 0.0))
        out[pair] = min(now, base * factor)
    return out


def entry_cap(target: float, band: float, held: float, leverage: float) -> float:
    """The most margin (as a fraction of equity) a new entry may commit at `leverage` so that the
    pair stays within target + band; `held`: the pair's weight already."""
    room = target + band - held
    return max(0.0, room) / leverage if leverage > 0 else 0.0
