"""Moving away from the targets in force costs `cost` per unit of turnover (sum of |new - old|
weight: the traded notional over equity, each side paying the taker fee).

The one-off cost is spread over `cost_days` (7) days of expected return: targets are recomputed
daily, but what they move is traded at most by the rebalancing, whose weekly pass is the longest
a target goes unchecked; charged against one day's return, almost no change ever paid for itself.
For max_utility the cost is a term of the objective (pypfopt's transaction_cost); for max_sharpe and min_volatility the
optimiser's weights replace the previous ones only when they beat them net of that cost."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helios_core.allocation.targets import Targets
from helios_live.settings import AllocationSettings

SAME = 1e-9  # turnover below this: the new weights are the previous ones


@dataclass(frozen=True)
class Previous:
    vector: pd.Series  # the previous weights over the universe (0 where it named none)
    outside: dict[str, float]  # its weights on pairs outside the universe: sold whatever happens

    def turnover(self, weights: pd.Series) -> float:
        moved = (weights.reindex(self.vector.index, fill_value=0.0) - self.vector).abs().sum()
        return float(moved + sum(self.outside.values()))


def previous_weights(previous: Targets | None, pairs: list[str]) -> Previous | None:
    if previous is None:
        return None
    vector = pd.Series({p: float(previous.weight(p)) for p in pairs}, dtype=float)
    outside = {p: float(w) for p, w in sorted(previous.weights.items()) if p not in pairs and w > 0}
    return Previous(vector, outside)


def performance(weights: pd.Series, mu: pd.Series, cov: pd.DataFrame, rf: float) -> dict[str, float | None]:
    """Daily expected return, volatility and Sharpe ratio (None without volatility)."""
    ret, vol = _moments(weights, mu, cov)
    sharpe = (ret - rf) / vol if vol > 0 else None
    return {"expected_return": ret, "volatility": vol, "sharpe": sharpe}


def _moments(weights: pd.Series, mu: pd.Series, cov: pd.DataFrame) -> tuple[float, float]:
    w = weights.reindex(mu.index, fill_value=0.0).to_numpy(dtype=float)
    variance = float(w @ cov.reindex(index=mu.index, columns=mu.index).to_numpy(dtype=float) @ w)
    return float(w @ mu.to_numpy(dtype=float)), math.sqrt(max(variance, 0.0))


def against_previous(
    weights: pd.Series,
    previous: Targets | None,
    prev: Previous | None,
    mu: pd.Series,
    cov: pd.DataFrame,
    cap: float,
    config: AllocationSettings,
    rf: float,
) -> tuple[pd.Series, float | None, bool, dict[str, Any]]:
    """(weights to use, their turnover from the targets in force, whether those were kept, the
    rule's numbers; `candidate_turnover` is what the optimiser's weights would have traded)."""
    if previous is None or prev is None:
        return weights, None, False, {"rule": "none", "why": "no targets in force"}
    turnover = prev.turnover(weights)
    cost = config.cost * turnover / config.cost_days
    if config.objective == "max_utility":
        return weights, turnover, False, {"rule": "in the objective", "cost": cost}
    if prev.outside:
        why = f"the targets in force name pairs outside the universe: {', '.join(prev.outside)}"
        return weights, turnover, False, {"rule": "none", "why": why}
    if float(prev.vector.max()) > cap + 1e-9:
        return weights, turnover, False, {"rule": "none", "why": f"the targets in force break the cap {cap:g}"}
    if turnover < SAME:
        return weights, turnover, False, {"rule": "none", "why": "the new weights are the targets in force"}
    rule: dict[str, Any]
    new_ret, new_vol = _moments(weights, mu, cov)
    old_ret, old_vol = _moments(prev.vector, mu, cov)
    if config.objective == "max_sharpe":
        # the Sharpe ratio of the new weights with the cost taken off their return, against the
        # Sharpe ratio of the old ones (no cost: keeping them trades nothing)
        new = (new_ret - cost - rf) / new_vol if new_vol > 0 else -math.inf
        old = (old_ret - rf) / old_vol if old_vol > 0 else -math.inf
        keep = bool(np.isfinite(old) and new <= old)
        rule = {"rule": "net sharpe", "new_sharpe_net": _num(new), "previous_sharpe": _num(old), "cost": cost}
    else:
        # min_volatility has no return to net the cost against; the lower variance is worth
        # delta/2 x (old variance - new variance) of daily return to a mean-variance investor
        # with the configured risk aversion (the certainty equivalent), and that must pay the cost
        gain = config.risk_aversion / 2.0 * (old_vol**2 - new_vol**2)
        keep = gain <= cost
        rule = {"rule": "certainty equivalent", "variance_gain": gain, "cost": cost,
                "new_variance": new_vol**2, "previous_variance": old_vol**2}  # fmt: skip
    rule["candidate_turnover"] = turnover
    if keep:
        rule["optimised_weights"] = {str(k): float(v) for k, v in weights.items()}
        return prev.vector.copy(), 0.0, True, rule
    return weights, turnover, False, rule


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
