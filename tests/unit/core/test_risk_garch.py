import math
import warnings
from typing import Any

import arch
import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from helios_core.risk import garch
from helios_core.risk.garch import (
    Regimes,
    VarianceState,
    VolModel,
    classify,
    daily_vol,
    fit,
    regimes_from_history,
)
from helios_core.volatility import ewma_volatility

FIVE_MINUTES = 300.0
ALPHA, BETA = 0.10, 0.85


def simulate(n: int = 8640, seed: int = 3, daily: float = 0.03, mu: float = 0.0) -> np.ndarray:
    """GARCH(1,1) 5m log returns whose long-run daily vol is `daily` (crypto-like: 3%)."""
    rng = np.random.default_rng(seed)
    long_run = daily**2 / 288
    omega = long_run * (1 - ALPHA - BETA)
    sigma2, out = long_run, np.empty(n)
    for t in range(n):
        out[t] = mu + math.sqrt(sigma2) * rng.standard_normal()
        sigma2 = omega + ALPHA * (out[t] - mu) ** 2 + BETA * sigma2
    return out


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return simulate()


@pytest.fixture(scope="module")
def model(returns: np.ndarray) -> VolModel:
    return fit(returns, FIVE_MINUTES)


def arch_fixed(r: np.ndarray, m: VolModel, scale: float = 1000.0) -> Any:
    """arch's own model with our parameters, on returns x scale."""
    am = arch_model(r * scale, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    return am, np.array([m.mu * scale, m.omega * scale**2, m.alpha, m.beta])


def test_fit_recovers_the_simulated_parameters(model: VolModel) -> None:
    assert (model.source, model.reason, model.n, model.interval_s) == ("GARCH", "", 8640, FIVE_MINUTES)
    assert model.alpha == pytest.approx(ALPHA, abs=0.03)
    assert model.beta == pytest.approx(BETA, abs=0.04)
    assert model.alpha + model.beta < 1
    long_run_daily = daily_vol(model.omega / (1 - model.alpha - model.beta), FIVE_MINUTES)
    assert long_run_daily == pytest.approx(0.03, rel=0.2)


def test_parameters_are_in_return_units_like_a_fit_in_percent(returns: np.ndarray, model: VolModel) -> None:
    # The design's scaling (x100); a different scale may land on a marginally different optimum.
    result = arch_model(returns * 100, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    assert model.mu == pytest.approx(result.params["mu"] / 100, rel=1e-3, abs=1e-7)
    assert model.omega == pytest.approx(result.params["omega"] / 1e4, rel=1e-2)
    assert (model.alpha, model.beta) == pytest.approx((result.params["alpha[1]"], result.params["beta[1]"]), abs=1e-3)
    assert model.variance == pytest.approx(result.forecast(horizon=1).variance.iloc[-1, 0] / 1e4, rel=1e-3)


def test_one_step_variance_is_arch_forecast_for_the_same_parameters(returns: np.ndarray, model: VolModel) -> None:
    am, params = arch_fixed(returns, model)
    forecast = am.forecast(params, horizon=1).variance.iloc[-1, 0] / 1000.0**2
    assert model.variance == pytest.approx(forecast, rel=1e-9)
    assert model.daily_vol == daily_vol(model.variance, FIVE_MINUTES)


def test_regimes_are_percentiles_of_the_in_sample_daily_vol_path(returns: np.ndarray, model: VolModel) -> None:
    am, params = arch_fixed(returns, model)
    path = am.fix(params).conditional_volatility / 1000.0 * math.sqrt(288)
    low, high, extreme = np.percentile(path, [25, 75, 95])
    assert (model.regimes.low, model.regimes.high, model.regimes.extreme) == pytest.approx(
        (low, high, extreme), rel=1e-9
    )
    assert model.regimes.low < model.regimes.high < model.regimes.extreme


def test_state_replayed_after_the_fit_equals_arch_over_the_longer_window(returns: np.ndarray) -> None:
    window, later = returns[:-500], returns[-500:]
    m = fit(window, FIVE_MINUTES)
    state = VarianceState.from_model(m)
    for r in later:
        state.update(float(r))
    am, params = arch_fixed(returns, m)
    assert state.variance == pytest.approx(am.forecast(params, horizon=1).variance.iloc[-1, 0] / 1e6, rel=1e-9)


def test_non_finite_returns_are_dropped(returns: np.ndarray, model: VolModel) -> None:
    gappy = np.insert(returns, [10, 500, 8000], [np.nan, np.inf, -np.inf])
    again = fit(gappy, FIVE_MINUTES)
    assert (again.n, again.variance, again.alpha) == (model.n, model.variance, model.alpha)


def test_no_warning_escapes_the_fit(returns: np.ndarray) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(returns[:150], FIVE_MINUTES)
        fit(returns * 1e-4, FIVE_MINUTES)
    assert caught == []


def assert_ewma(m: VolModel, reason: str) -> None:
    assert (m.source, m.mu, m.omega, m.beta) == ("EWMA", 0.0, 0.0, 0.94)
    assert m.alpha == pytest.approx(0.06)
    assert m.reason.startswith(reason), m.reason


def test_too_few_returns_give_the_ewma_of_helios_core_volatility(returns: np.ndarray) -> None:
    m = fit(returns[:99], FIVE_MINUTES)
    assert_ewma(m, "too few returns: 99 < 100")
    expected = ewma_volatility(pd.Series(returns[:99])).iloc[-1] ** 2
    assert m.variance == pytest.approx(expected, rel=1e-12)
    assert m.n == 99 and math.isfinite(m.regimes.low)
    assert fit(returns[:99], FIVE_MINUTES, min_returns=50).source == "GARCH"


@pytest.mark.parametrize("data", [np.array([]), np.array([np.nan, np.inf, -np.inf])])
def test_without_a_single_return_the_ewma_has_no_variance(data: np.ndarray) -> None:
    m = fit(data, FIVE_MINUTES)
    assert_ewma(m, "no finite returns")
    assert m.n == 0 and math.isnan(m.variance) and math.isnan(m.daily_vol)
    assert classify(m.daily_vol, m.regimes) == "EXTREME"


def test_constant_returns_fall_back_with_zero_variance() -> None:
    m = fit(np.full(200, 0.001), FIVE_MINUTES)
    assert_ewma(m, "returns have zero variance")
    assert m.variance == pytest.approx(1e-6)  # EWMA of r^2, not a variance about the mean


class FakeArch:
    """Stands in for arch.arch_model: returns given parameters, flag, or raises."""

    def __init__(self, alpha: float = 0.1, beta: float = 0.85, flag: int = 0, error: Exception | None = None) -> None:
        self.alpha, self.beta, self.flag, self.error = alpha, beta, flag, error

    def __call__(self, y: np.ndarray, **kwargs: object) -> "FakeArch":
        return self

    def fit(self, **kwargs: object) -> "FakeArch":
        if self.error is not None:
            raise self.error
        return self

    @property
    def params(self) -> pd.Series:
        return pd.Series({"mu": 0.0, "omega": 0.01, "alpha[1]": self.alpha, "beta[1]": self.beta})

    @property
    def convergence_flag(self) -> int:
        return self.flag


@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (FakeArch(alpha=0.152, beta=0.85), "non-stationary: alpha+beta=1.002"),
        (FakeArch(alpha=0.2, beta=0.8), "non-stationary: alpha+beta=1.000"),
        (FakeArch(flag=4), "optimiser did not converge (flag 4)"),
        (FakeArch(error=np.linalg.LinAlgError("singular matrix")), "fit failed: LinAlgError: singular matrix"),
        (FakeArch(error=ValueError("boom")), "fit failed: ValueError: boom"),
        (FakeArch(alpha=math.nan), "non-finite parameters"),
    ],
)
def test_a_bad_fit_falls_back_to_ewma(
    monkeypatch: pytest.MonkeyPatch, returns: np.ndarray, fake: FakeArch, reason: str
) -> None:
    monkeypatch.setattr(arch, "arch_model", fake)
    m = fit(returns, FIVE_MINUTES)
    assert_ewma(m, reason)
    assert m.reason == reason
    assert m.variance == pytest.approx(ewma_volatility(pd.Series(returns)).iloc[-1] ** 2, rel=1e-12)


def test_a_stationary_fake_fit_is_taken_as_garch(monkeypatch: pytest.MonkeyPatch, returns: np.ndarray) -> None:
    # The control for the fallback cases above: the same fake, just under alpha + beta = 1.
    monkeypatch.setattr(arch, "arch_model", FakeArch(alpha=0.149, beta=0.85))
    m = fit(returns, FIVE_MINUTES)
    assert (m.source, m.reason, m.alpha, m.beta) == ("GARCH", "", 0.149, 0.85)
    assert m.omega == pytest.approx(0.01 / 1000.0**2)


def test_fit_refuses_a_meaningless_interval(returns: np.ndarray) -> None:
    for interval in (0.0, -300.0, math.nan):
        with pytest.raises(ValueError, match="interval_s"):
            fit(returns, interval)


def test_update_is_one_recursion_step_and_ignores_non_finite_returns() -> None:
    state = VarianceState(mu=1e-4, omega=2e-7, alpha=0.1, beta=0.85, variance=4e-6)
    # 2e-7 + 0.1 x (0.003 - 0.0001)^2 + 0.85 x 4e-6 = 2e-7 + 8.41e-7 + 3.4e-6
    assert state.update(0.003) == pytest.approx(4.441e-6, rel=1e-12)
    for bad in (math.nan, math.inf, -math.inf):
        assert state.update(bad) == pytest.approx(4.441e-6, rel=1e-12)
    assert state.variance == pytest.approx(4.441e-6, rel=1e-12)
    with pytest.raises(AttributeError):
        state.other = 1.0  # type: ignore[attr-defined]  # __slots__: no per-instance dict


def test_daily_vol_scales_by_intervals_per_day_and_guards() -> None:
    assert daily_vol(1e-6, FIVE_MINUTES) == pytest.approx(math.sqrt(288e-6))
    assert daily_vol(0.0, 60.0) == 0.0
    for variance, interval in [(math.nan, 300.0), (math.inf, 300.0), (-1e-9, 300.0), (1e-6, 0.0), (1e-6, -1.0)]:
        assert math.isnan(daily_vol(variance, interval))
    assert math.isnan(daily_vol(1e-6, math.nan))


def test_classify_covers_every_regime_and_nan_is_extreme() -> None:
    regimes = Regimes(low=0.01, high=0.02, extreme=0.03)
    got = [classify(v, regimes) for v in (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.5, math.inf, math.nan)]
    assert got == ["LOW", "MEDIUM", "MEDIUM", "HIGH", "HIGH", "EXTREME", "EXTREME", "EXTREME", "EXTREME"]


def test_regimes_from_history_ignores_non_finite_values_and_needs_two() -> None:
    history = np.concatenate([np.arange(1.0, 101.0), [np.nan, np.inf]])
    regimes = regimes_from_history(history)
    assert (regimes.low, regimes.high, regimes.extreme) == pytest.approx((25.75, 75.25, 95.05))
    for short in (np.array([]), np.array([0.02, np.nan])):
        regimes = regimes_from_history(short)
        assert all(math.isnan(x) for x in (regimes.low, regimes.high, regimes.extreme))
        assert classify(0.0, regimes) == "EXTREME"


def test_regime_names_are_the_ones_sizing_knows() -> None:
    assert garch.REGIMES == ("LOW", "MEDIUM", "HIGH", "EXTREME")
