"""Tier 5 target weights: Black-Litterman over the model's views, then a long-only optimiser
with a per-pair cap, aware of the cost of moving away from the targets in force.

Every number is daily (returns, covariance, risk-free rate = annual / 365). Whatever goes wrong
ends in a stated fallback (`fallback.py`), logged and recorded in the targets, never silently.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier, objective_functions
from pypfopt.exceptions import InstantiationError, OptimizationError

from helios_core.allocation.data import AllocationData
from helios_core.allocation.targets import Targets
from helios_core.trading.orders import require_aware
from helios_dagster.allocation import estimates
from helios_dagster.allocation.costs import Previous, against_previous, performance, previous_weights
from helios_dagster.allocation.estimates import AllocationFailure, Window
from helios_dagster.allocation.fallback import capped, effective_cap, fallback_weights
from helios_live.settings import AllocationSettings

log = logging.getLogger(__name__)

# One fixed solver: the same inputs give the same weights on every machine that has it.
SOLVER = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else None  # type: ignore[no-untyped-call]  # cvxpy has no hints
OPTIMISER_ERRORS = (OptimizationError, InstantiationError, cp.error.SolverError, ValueError, ArithmeticError)
# The solver's answer may stray this far outside the constraints; further is a failure.
SLACK = 1e-6
NOISE = 1e-9  # weights below this are solver noise, set to 0


def allocate(data: AllocationData, config: AllocationSettings, now: datetime) -> Targets:
    """Target weights for `data.pairs` as of `data.as_of` (`now`: when it ran). Long-only, each
    in [0, cap], summing to 1; `inputs` records everything the result came from."""
    require_aware("now", now)
    pairs = sorted(data.pairs)
    if not pairs:
        raise ValueError("nothing to allocate: the data names no pair")
    win = estimates.window(data, config)
    inputs = _base_inputs(data, win, pairs, config)
    try:
        weights, method = _optimise(data, win, pairs, config, inputs)
    except AllocationFailure as exc:
        return _fallback(data, win, pairs, config, inputs, str(exc), now)
    return Targets(_clean_dict(weights), now, data.as_of, method, None, inputs)


def _base_inputs(data: AllocationData, win: Window, pairs: list[str], config: AllocationSettings) -> dict[str, Any]:
    previous = data.previous
    return {
        "pairs": pairs,
        "as_of": data.as_of.isoformat(),
        "window": {"start": win.start.isoformat(), "end": win.end.isoformat(), "days": config.window_days},
        "returns": None,
        "cov": None,
        "prior_source": None,
        "prior_weights": None,
        "prior_returns": None,
        "views_used": {},
        "views_dropped": {},
        "posterior_returns": None,
        "objective": config.objective,
        "risk_aversion": config.risk_aversion,
        "tau": config.tau,
        "risk_free_rate": {"annual": config.risk_free_rate, "daily": estimates.daily_rate(config.risk_free_rate)},
        "max_weight": config.max_weight,
        "cap": None,
        "cap_note": None,
        "expected_return": None,
        "volatility": None,
        "sharpe": None,
        "cost": config.cost,
        "previous": None if previous is None else {"computed_at": previous.computed_at.isoformat(),
                                                   "method": previous.method, "weights": dict(previous.weights)},
        "turnover": None,
        "kept_previous": False,
        "cost_rule": None,
    }  # fmt: skip


def _optimise(
    data: AllocationData, win: Window, pairs: list[str], config: AllocationSettings, inputs: dict[str, Any]
) -> tuple[pd.Series, str]:
    rets = estimates.returns(win, config.min_returns)
    inputs["returns"] = {"count": len(rets), "first": rets.index[0].isoformat(), "last": rets.index[-1].isoformat()}
    cov, shrinkage = estimates.covariance(rets)
    inputs["cov"] = {"method": "ledoit_wolf", "target": "constant_variance", "shrinkage": shrinkage}
    prior_w, inputs["prior_source"] = estimates.prior_weights(win.volumes)
    inputs["prior_weights"] = _floats(prior_w)
    prior = estimates.prior_returns(prior_w, cov, config)
    inputs["prior_returns"] = _floats(prior)
    used, dropped = estimates.usable_views(data.views, pairs)
    inputs["views_used"] = {p: estimates.describe(v) for p, v in used.items()}
    inputs["views_dropped"] = dropped
    mu = estimates.posterior(prior, cov, used, config)
    inputs["posterior_returns"] = _floats(mu)
    cap, inputs["cap_note"] = effective_cap(config.max_weight, len(pairs))
    inputs["cap"] = cap
    rf = estimates.daily_rate(config.risk_free_rate)
    prev = previous_weights(data.previous, pairs)
    if inputs["cap_note"] is not None:  # the cap leaves one portfolio: no optimiser can choose
        weights, method = pd.Series(1.0 / len(pairs), index=pairs), "cap/equal"
    else:
        weights = _solve(mu, cov, cap, config, rf, prev)
        method = f"{'black_litterman' if used else 'prior'}/{config.objective}"
        weights, inputs["turnover"], inputs["kept_previous"], inputs["cost_rule"] = against_previous(
            weights, data.previous, prev, mu, cov, cap, config, rf
        )
    if inputs["turnover"] is None and prev is not None:
        inputs["turnover"] = prev.turnover(weights)
    inputs.update(performance(weights, mu, cov, rf))
    return weights, method


def _solve(
    mu: pd.Series, cov: pd.DataFrame, cap: float, config: AllocationSettings, rf: float, prev: Previous | None
) -> pd.Series:
    if config.objective == "max_sharpe":
        best = _best_excess(mu - rf, cap)
        if not best > 0:  # the solver would call it infeasible (or pypfopt raise) without saying why
            raise AllocationFailure(
                f"max_sharpe: no portfolio within the cap {cap:g} earns above the risk-free rate "
                f"(the best earns {best:.3g} a day above it)"
            )
    try:
        ef = EfficientFrontier(mu, cov, weight_bounds=(0.0, cap), solver=SOLVER)
        if config.objective == "max_sharpe":
            raw = ef.max_sharpe(risk_free_rate=rf)
        elif config.objective == "min_volatility":
            raw = ef.min_volatility()
        else:
            if prev is not None:
                ef.add_objective(
                    objective_functions.transaction_cost,
                    w_prev=prev.vector.to_numpy(),
                    k=config.cost / config.cost_days,  # per day, as the returns are
                )
            raw = ef.max_quadratic_utility(risk_aversion=config.risk_aversion)
    except OPTIMISER_ERRORS as exc:
        raise AllocationFailure(f"optimiser ({config.objective}) failed: {type(exc).__name__}: {exc}") from exc
    weights = pd.Series({p: float(raw[p]) if raw[p] is not None else math.nan for p in mu.index}, dtype=float)
    values = weights.to_numpy()
    if not np.isfinite(values).all():
        raise AllocationFailure(f"optimiser ({config.objective}) returned non-finite weights")
    if values.min() < -SLACK or values.max() > cap + SLACK or abs(values.sum() - 1.0) > SLACK:
        raise AllocationFailure(f"optimiser ({config.objective}) returned weights outside the constraints")
    weights[weights < NOISE] = 0.0
    return capped(weights.clip(upper=cap), cap)


def _best_excess(excess: pd.Series, cap: float) -> float:
    """The largest excess return any long-only portfolio within the cap can have: the best pairs
    filled to the cap in turn."""
    left, best = 1.0, 0.0
    for value in sorted(excess.to_numpy(dtype=float), reverse=True):
        take = min(cap, left)
        best, left = best + take * value, left - take
        if left <= 0:
            break
    return best


def _fallback(
    data: AllocationData,
    win: Window,
    pairs: list[str],
    config: AllocationSettings,
    inputs: dict[str, Any],
    reason: str,
    now: datetime,
) -> Targets:
    found = fallback_weights(pairs, win.volumes, win.closes, config.max_weight)
    rule = "volume prior" if found.method == "fallback/volume_prior" else "equal weights"
    log.warning(f"allocation as of {data.as_of.isoformat()}: {reason}; using {rule} ({found.prior})")
    inputs.update(cap=found.cap, cap_note=found.cap_note, prior_source=found.prior, kept_previous=False)
    inputs.update(expected_return=None, volatility=None, sharpe=None, cost_rule=None)
    if inputs["prior_weights"] is None:  # the volume proxy itself, before any cap
        inputs["prior_weights"] = _floats(estimates.prior_weights(win.volumes)[0])
    prev = previous_weights(data.previous, pairs)
    inputs["turnover"] = None if prev is None else prev.turnover(found.weights)
    return Targets(_clean_dict(found.weights), now, data.as_of, found.method, f"{rule}: {reason}", inputs)


def _floats(series: pd.Series) -> dict[str, float | None]:
    return {str(k): (float(v) if math.isfinite(float(v)) else None) for k, v in series.items()}


def _clean_dict(weights: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in sorted(weights.items())}
