"""What the surveillance sources observe, after parsing: plain values, checked numbers, epoch
seconds in UTC. A source that cannot build one of these from an answer counts the answer as bad
and builds nothing (docs/surveillance.md, "Bad input")."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quote:
    """One venue's price of one asset at `ts` (epoch seconds, UTC). `asset` is the canonical
    name the detectors compare on: "BTC" for BTC in USD, "BTCZAR" for a Helios pair."""

    venue: str
    asset: str
    price: float
    ts: float
    kind: str = "mid"  # oracle, mark, mid, last


@dataclass(frozen=True, slots=True)
class AssetContext:
    """Hyperliquid's context for one perpetual (`metaAndAssetCtxs`)."""

    asset: str
    oracle: float
    mark: float
    mid: float | None
    funding: float
    open_interest: float
    ts: float


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One liquidation fill. `side` is the side of the position that was liquidated: "long"
    (the fill sold it) or "short"."""

    venue: str
    asset: str
    side: str
    price: float
    size: float
    ts: float
    user: str = ""
    tx_hash: str | None = None

    @property
    def notional(self) -> float:
        return self.price * self.size


@dataclass(frozen=True, slots=True)
class VaultState:
    """A vault's equity (account value, USD) and its cumulative P&L at `ts`."""

    venue: str
    vault: str
    equity: float
    pnl: float
    ts: float


def usable(value: float) -> bool:
    """A price, size or equity the detectors may use: finite and above zero."""
    return math.isfinite(value) and value > 0.0
