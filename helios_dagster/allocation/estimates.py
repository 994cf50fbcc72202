"""The optimiser's estimates, all in daily units: returns over the window, the Ledoit-Wolf
covariance, the volume-proxy equilibrium prior and the Black-Litterman posterior.

Each step raises `AllocationFailure` with the reason a stated fallback rule will quote."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pypfopt import black_litterman, risk_models

from helios_core.allocation.data import AllocationData, last_whole_day
from helios_core.allocation.views import View
from helios_core.pairs import split_pair
from helios_live.settings import AllocationSettings

DAYS_PER_YEAR = 365  # crypto trades every day: a daily rate is the annual one over 365
# An eigenvalue this far below the largest makes the optimiser's answer noise (or its solve fail).
MIN_CONDITION = 1e-12
# Idzorek's omega grows as (1 - c) / c: below this it overflows to inf and the posterior to NaN,
# and long before that the view has no weight at all. Such a view counts as confidence 0.
MIN_CONFIDENCE = 1e-9


class AllocationFailure(Exception):
    """The optimisation cannot be trusted; the message says why, for the fallback's record."""


@dataclass(frozen=True)
class Window:
    start: pd.Timestamp  # the first close used (one day before the first return)
    end: pd.Timestamp  # the last whole day ended by as_of
    closes: pd.DataFrame
    volumes: pd.DataFrame


def daily_rate(annual: float) -> float:
    return annual / DAYS_PER_YEAR


def window(data: AllocationData, config: AllocationSettings) -> Window:
    """The closes of the last `window_days` returns and the volumes of the last `prior_days`,
    both ending with the last whole day before `as_of` (not the last day the data has)."""
    end = last_whole_day(data.as_of)
    start = end - pd.Timedelta(days=config.window_days)
    closes = data.closes.loc[(data.closes.index >= start) & (data.closes.index <= end), sorted(data.pairs)]
    first_volume = end - pd.Timedelta(days=config.prior_days - 1)
    volumes = data.volumes.loc[(data.volumes.index >= first_volume) & (data.volumes.index <= end), sorted(data.pairs)]
    return Window(start, end, closes.astype(float), volumes.astype(float))


def returns(win: Window, min_returns: int) -> pd.DataFrame:
    """Simple daily returns on the days every pair has one (a covariance needs them aligned)."""
    closes = win.closes
    missing = [p for p in closes.columns if not closes[p].notna().any()]
    if missing:
        raise AllocationFailure(f"no data in the window for {', '.join(missing)}")
    values = closes.to_numpy(dtype=float)
    bad = ~np.isnan(values) & (~np.isfinite(values) | (values <= 0))
    if bad.any():
        pairs = sorted({str(closes.columns[j]) for j in np.nonzero(bad)[1]})
        raise AllocationFailure(f"non-finite or non-positive closes for {', '.join(pairs)}")
    # fill_method=None: a return across a missing day is missing, never a two-day move as one day's
    rets = closes.pct_change(fill_method=None).iloc[1:].dropna(how="any")
    if len(rets) < min_returns:
        raise AllocationFailure(f"too few returns: {len(rets)} days every pair has, fewer than {min_returns}")
    return rets


def covariance(rets: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Ledoit-Wolf shrunk covariance of daily returns (frequency 1: no annualising) and the
    shrinkage intensity."""
    flat = [str(p) for p in rets.columns if not float(rets[p].std(ddof=1)) > 0]
    if flat:
        raise AllocationFailure(f"degenerate covariance: no variance in the returns of {', '.join(flat)}")
    shrinkage = risk_models.CovarianceShrinkage(rets, returns_data=True, frequency=1)
    cov = shrinkage.ledoit_wolf()
    values = cov.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise AllocationFailure("degenerate covariance: non-finite entries")
    eigen = np.linalg.eigvalsh(values)
    if not eigen[-1] > 0 or eigen[0] <= MIN_CONDITION * eigen[-1]:
        raise AllocationFailure(f"degenerate covariance: eigenvalues from {eigen[0]:.3g} to {eigen[-1]:.3g}")
    return cov, float(shrinkage.delta)


def prior_weights(volumes: pd.DataFrame) -> tuple[pd.Series, str]:
    """The volume proxy for market weights: mean daily quote volume, normalised. Equal weights
    when the quotes differ (a ZAR volume and a BTC volume do not compare) or no pair has any."""
    pairs = [str(p) for p in volumes.columns]
    quotes = sorted({split_pair(p)[1] for p in pairs})
    equal = pd.Series(1.0 / len(pairs), index=pairs) if pairs else pd.Series(dtype=float)
    if len(quotes) > 1:
        return equal, f"equal: quote volumes in {', '.join(q or '?' for q in quotes)} do not compare"
    mean = volumes.mean(skipna=True).reindex(pairs)
    mean = mean.where(np.isfinite(mean) & (mean > 0), 0.0).astype(float)
    total = float(mean.sum())
    if not (total > 0 and math.isfinite(total)):
        return equal, "equal: no quote volume in the prior window"
    return mean / total, "volume"


def prior_returns(weights: pd.Series, cov: pd.DataFrame, config: AllocationSettings) -> pd.Series:
    """Equilibrium daily returns delta x cov x w + rf (pypfopt's Pi plus the risk-free rate)."""
    prior = black_litterman.market_implied_prior_returns(
        weights.reindex(cov.index), config.risk_aversion, cov, daily_rate(config.risk_free_rate)
    )
    if not np.isfinite(prior.to_numpy(dtype=float)).all():
        raise AllocationFailure("non-finite prior returns")
    return prior.astype(float)


def usable_views(views: Mapping[str, View], pairs: list[str]) -> tuple[dict[str, View], dict[str, dict[str, Any]]]:
    """The views the posterior takes, and those dropped with why. A view with confidence 0 (below
    MIN_CONFIDENCE) is dropped, not passed on: Idzorek's method would turn it into a huge but finite variance that
    still moves the posterior a little; dropped, the prior stands exactly."""
    used: dict[str, View] = {}
    dropped: dict[str, dict[str, Any]] = {}
    for pair in sorted(views):
        view = views[pair]
        reason = None
        if pair not in pairs:
            reason = "not in the universe"
        elif not (math.isfinite(view.expected_return) and math.isfinite(view.confidence)):
            reason = "not finite"
        elif not 0.0 <= view.confidence <= 1.0:
            reason = "confidence outside [0, 1]"
        elif view.confidence < MIN_CONFIDENCE:
            reason = f"confidence {view.confidence:g} counts as 0: the prior stands"
        if reason is None:
            used[pair] = view
        else:
            dropped[pair] = {"reason": reason, **describe(view)}
    return used, dropped


def describe(view: View) -> dict[str, Any]:
    return {
        "expected_return": view.expected_return if math.isfinite(view.expected_return) else None,
        "confidence": view.confidence if math.isfinite(view.confidence) else None,
        "predictions": view.predictions,
    }


def posterior(prior: pd.Series, cov: pd.DataFrame, used: Mapping[str, View], config: AllocationSettings) -> pd.Series:
    """Black-Litterman posterior daily returns with absolute views and Idzorek's omega; the
    prior itself when there is no view (no model is built)."""
    if not used:
        return prior.copy()
    pairs = sorted(used)
    model = black_litterman.BlackLittermanModel(
        cov,
        pi=prior,
        absolute_views={p: used[p].expected_return for p in pairs},
        omega="idzorek",
        view_confidences=[used[p].confidence for p in pairs],
        tau=config.tau,
        risk_aversion=config.risk_aversion,
    )
    post = model.bl_returns().reindex(prior.index).astype(float)
    if not np.isfinite(post.to_numpy(dtype=float)).all():
        raise AllocationFailure("non-finite posterior returns")
    return post
