"""Tier 3 volatility: a GARCH(1,1) per pair, with the RiskMetrics EWMA as its documented fallback.

Fitting is a numerical optimisation over a month of returns (tens of milliseconds at best, and
arch plus scipy take seconds to import), so `fit` never runs on the decision path: callers refit
in the background (the design: every four hours, or after an extreme move) and swap the new
model in. The parameters stay good for hours; the conditional variance does not, it moves with
every return. `VarianceState` therefore replays the model's own recursion one return at a time
between fits (plain floats, well under a microsecond), so the live forecast is exactly what the
fitted model would say about the longer window. `fit` builds its in-sample path with the same
`VarianceState.update`, so there is one implementation of the recursion.

All variances are per return interval, in return units squared (log returns, not percent).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from helios_core.volatility import RISKMETRICS_LAMBDA

GARCH = "GARCH"
EWMA = "EWMA"
REGIMES = ("LOW", "MEDIUM", "HIGH", "EXTREME")
SECONDS_PER_DAY = 86400.0
# arch's backcast: sigma2 before the first return is the 0.94-weighted mean of the first 75
# squared residuals (arch.univariate.volatility.GARCH.backcast). Matching it makes our path
# equal to arch's own, which the tests check against `forecast(horizon=1)`.
BACKCAST_SPAN = 75
BACKCAST_DECAY = 0.94


@dataclass(frozen=True, slots=True)
class Regimes:
    """Daily-vol thresholds: the 25th, 75th and 95th percentiles of the pair's own daily vol."""

    low: float
    high: float
    extreme: float


@dataclass(frozen=True, slots=True)
class VolModel:
    """A fitted variance model: sigma2[t+1] = omega + alpha (r[t] - mu)^2 + beta sigma2[t].

    `source` is "GARCH" or "EWMA" (mu = omega = 0, alpha = 0.06, beta = 0.94); `reason` says why
    the fallback was taken ("" for GARCH). `variance` is the one-step-ahead variance of the
    return after the window (NaN without any usable return: no sizing); `n` the returns used.
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    source: str
    reason: str
    interval_s: float
    n: int
    variance: float
    regimes: Regimes

    @property
    def daily_vol(self) -> float:
        return daily_vol(self.variance, self.interval_s)


class VarianceState:
    """The live one-step variance of one pair, advanced return by return between refits."""

    __slots__ = ("alpha", "beta", "mu", "omega", "variance")

    def __init__(self, mu: float, omega: float, alpha: float, beta: float, variance: float) -> None:
        self.mu = float(mu)
        self.omega = float(omega)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.variance = float(variance)

    @classmethod
    def from_model(cls, model: VolModel) -> VarianceState:
        return cls(model.mu, model.omega, model.alpha, model.beta, model.variance)

    def update(self, r: float) -> float:
        """Take return `r` (the one just closed) and return the variance of the next one.
        A non-finite `r` is ignored: the variance stays as it was."""
        if not math.isfinite(r):
            return self.variance
        eps = r - self.mu
        self.variance = self.omega + self.alpha * eps * eps + self.beta * self.variance
        return self.variance


def daily_vol(variance: float, interval_s: float) -> float:
    """Daily volatility from a per-interval variance: sqrt(variance x 86400 / interval_s).
    NaN when the variance is not finite or negative, or the interval is not positive."""
    if not (math.isfinite(variance) and variance >= 0.0 and math.isfinite(interval_s) and interval_s > 0.0):
        return math.nan
    return math.sqrt(variance * SECONDS_PER_DAY / interval_s)


def regimes_from_history(daily_vols: np.ndarray) -> Regimes:
    """Thresholds from a daily-vol history, non-finite values ignored. With fewer than two
    finite values every threshold is NaN, and `classify` then answers "EXTREME" for any input:
    without a history there is no calm to compare with, so the tightest cap applies."""
    values = np.asarray(daily_vols, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Regimes(math.nan, math.nan, math.nan)
    low, high, extreme = np.percentile(values, [25.0, 75.0, 95.0])
    return Regimes(float(low), float(high), float(extreme))


def classify(daily_vol: float, regimes: Regimes) -> str:
    """The regime of a daily vol: "LOW" below the 25th percentile, "MEDIUM" below the 75th,
    "HIGH" below the 95th, else "EXTREME". A non-finite vol (or NaN thresholds) is "EXTREME",
    the safest cap."""
    # Comparisons with NaN are False, so NaN on either side falls through to EXTREME.
    if daily_vol < regimes.low:
        return "LOW"
    if daily_vol < regimes.high:
        return "MEDIUM"
    if daily_vol < regimes.extreme:
        return "HIGH"
    return "EXTREME"


def fit(returns: np.ndarray, interval_s: float, *, min_returns: int = 100) -> VolModel:
    """Fit GARCH(1,1) (constant mean, normal errors) to log returns spaced `interval_s` apart.

    Non-finite returns are dropped (the rest are treated as consecutive). Bad data never
    raises: too few returns, a failed or unconverged optimisation, or alpha + beta >= 1 give
    the EWMA model instead, with the reason. Raises ValueError only for a non-positive interval.
    """
    if not (math.isfinite(interval_s) and interval_s > 0.0):
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    r = np.asarray(returns, dtype=float).ravel()
    r = r[np.isfinite(r)]
    if r.size == 0:
        return _ewma(r, interval_s, "no finite returns: no variance estimate")
    if r.size < min_returns:
        return _ewma(r, interval_s, f"too few returns: {r.size} < {min_returns}")
    if r.max() == r.min():
        return _ewma(r, interval_s, "returns have zero variance")
    try:
        mu, omega, alpha, beta, flag = _fit_arch(r)
    except Exception as exc:  # any failure inside arch/scipy means "no GARCH", not a crash
        return _ewma(r, interval_s, f"fit failed: {type(exc).__name__}: {exc}")
    if flag != 0:
        return _ewma(r, interval_s, f"optimiser did not converge (flag {flag})")
    if not all(math.isfinite(x) for x in (mu, omega, alpha, beta)):
        return _ewma(r, interval_s, "non-finite parameters")
    if alpha + beta >= 1.0:
        return _ewma(r, interval_s, f"non-stationary: alpha+beta={alpha + beta:.3f}")
    eps = r - mu
    weights = BACKCAST_DECAY ** np.arange(min(BACKCAST_SPAN, eps.size))
    backcast = float(np.sum(eps[: weights.size] ** 2 * weights) / weights.sum())
    # arch uses the backcast for both the lagged squared residual and the lagged variance.
    start = omega + (alpha + beta) * backcast
    return _model(r, VarianceState(mu, omega, alpha, beta, start), GARCH, "", interval_s)


def _fit_arch(r: np.ndarray) -> tuple[float, float, float, float, int]:
    """(mu, omega, alpha, beta, convergence flag) in return units."""
    # Imported here: arch and scipy take seconds to import and only the background refit needs them.
    from arch import arch_model

    # A power of ten that puts the sample std in [1, 10): 5m log returns (~1e-3) are too small
    # for the optimiser. rescale=False: we scale ourselves, arch neither warns nor rescales.
    scale = 10.0 ** -math.floor(math.log10(float(np.std(r))))
    model = arch_model(r * scale, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings():
        # Starting-value and optimiser warnings: the flag and the fallback speak for them.
        warnings.simplefilter("ignore")
        result = model.fit(disp="off", show_warning=False)
    params = result.params
    return (
        float(params["mu"]) / scale,
        float(params["omega"]) / scale**2,
        float(params["alpha[1]"]),
        float(params["beta[1]"]),
        int(result.convergence_flag),
    )


def _ewma(r: np.ndarray, interval_s: float, reason: str) -> VolModel:
    # Seeded with the first squared return, so that after the first update it is exactly
    # helios_core.volatility.ewma_volatility (pandas ewm, adjust=False) squared.
    start = float(r[0]) ** 2 if r.size else math.nan
    state = VarianceState(0.0, 0.0, 1.0 - RISKMETRICS_LAMBDA, RISKMETRICS_LAMBDA, start)
    return _model(r, state, EWMA, reason, interval_s)


def _model(r: np.ndarray, state: VarianceState, source: str, reason: str, interval_s: float) -> VolModel:
    # path[t] = variance of r[t] given the returns before it (arch's conditional variance).
    path = np.empty(r.size)
    for t, x in enumerate(r.tolist()):
        path[t] = state.variance
        state.update(x)
    history = np.sqrt(np.where(path >= 0.0, path, np.nan) * SECONDS_PER_DAY / interval_s)
    return VolModel(
        mu=state.mu,
        omega=state.omega,
        alpha=state.alpha,
        beta=state.beta,
        source=source,
        reason=reason,
        interval_s=interval_s,
        n=int(r.size),
        variance=state.variance,
        regimes=regimes_from_history(history),
    )
