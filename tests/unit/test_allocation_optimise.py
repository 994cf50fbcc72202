"""Tier 5 allocation on the batch side: daily bars from candles, the Black-Litterman posterior,
the optimiser's weights, the cost of turnover and every fallback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypfopt import EfficientFrontier
from pypfopt.exceptions import OptimizationError

from helios_core.allocation.data import AllocationData, daily_frames, last_whole_day
from helios_core.allocation.targets import Targets
from helios_core.allocation.views import View
from helios_dagster.allocation import allocate, estimates
from helios_dagster.allocation.fallback import capped
from helios_live.settings import AllocationSettings

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AS_OF = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
NOW = AS_OF + timedelta(minutes=1)
PAIRS = ("ADABTC", "ETHBTC", "LTCBTC", "SOLBTC", "XMRBTC", "XRPBTC")
OBJECTIVES = ("max_sharpe", "min_volatility", "max_utility")


def market(seed: int, n: int, days: int = 91, drift: float = 0.001) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily closes and quote volumes of n correlated pairs ending on the last day before AS_OF."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(drift, 0.02, (days, 1))
    rets = factor * rng.uniform(0.5, 1.5, n) + rng.normal(0.0, 0.015, (days, n))
    index = pd.date_range(end=last_whole_day(AS_OF), periods=days, freq="D")
    closes = pd.DataFrame(100.0 * np.cumprod(1.0 + rets, axis=0), index=index, columns=list(PAIRS[:n]))
    volumes = pd.DataFrame(rng.lognormal(10.0, 1.0, (days, n)), index=index, columns=list(PAIRS[:n]))
    return closes, volumes


def data_of(seed: int, n: int, views: dict[str, View] | None = None, previous: Targets | None = None,
            **kwargs: float) -> AllocationData:  # fmt: skip
    closes, volumes = market(seed, n, **kwargs)  # type: ignore[arg-type]
    return AllocationData(AS_OF, closes, volumes, views or {}, previous)


views_strategy = st.dictionaries(
    st.sampled_from(PAIRS),
    st.tuples(st.floats(-0.05, 0.05), st.floats(0.0, 1.0)),
    max_size=6,
).map(lambda d: {p: View(p, r, c, 10) for p, (r, c) in d.items()})


def assert_valid(targets: Targets) -> None:
    weights = np.array(list(targets.weights.values()))
    assert abs(weights.sum() - 1.0) <= 1e-6
    assert (weights >= 0).all() and (weights <= targets.inputs["cap"] + 1e-9).all()
    json.dumps(targets.inputs, allow_nan=False)  # strict JSON: the ledger and Dagster's metadata


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    max_weight=st.floats(0.1, 1.0),
    objective=st.sampled_from(OBJECTIVES),
    views=views_strategy,
)
def test_weights_sum_to_one_within_the_cap(
    seed: int, n: int, max_weight: float, objective: str, views: dict[str, View]
) -> None:
    config = AllocationSettings(max_weight=max_weight, objective=objective)  # type: ignore[arg-type]
    targets = allocate(data_of(seed, n, views), config, NOW)
    assert_valid(targets)
    assert sorted(targets.weights) == list(PAIRS[:n])
    if targets.fallback is None:
        assert targets.inputs["cap"] == pytest.approx(max(max_weight, 1.0 / n))


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), views=views_strategy, zero=st.sampled_from(PAIRS))
def test_a_zero_confidence_view_changes_nothing(seed: int, n: int, views: dict[str, View], zero: str) -> None:
    config = AllocationSettings()
    closes, volumes = market(seed, n)
    win = estimates.window(AllocationData(AS_OF, closes, volumes), config)
    cov, _ = estimates.covariance(estimates.returns(win, config.min_returns))
    prior = estimates.prior_returns(estimates.prior_weights(win.volumes)[0], cov, config)
    without = {p: v for p, v in views.items() if p != zero}
    with_zero = {**without, zero: View(zero, 0.04, 0.0, 10)}

    def post(vs: dict[str, View]) -> pd.Series:
        return estimates.posterior(prior, cov, estimates.usable_views(vs, list(closes.columns))[0], config)

    pd.testing.assert_series_equal(post(with_zero), post(without), check_exact=True)
    only_zero = {p: View(p, 0.04, 0.0, 10) for p in closes.columns}
    pd.testing.assert_series_equal(post(only_zero), prior, check_exact=True)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6), objective=st.sampled_from(OBJECTIVES), views=views_strategy)
def test_the_same_inputs_give_the_same_weights(seed: int, n: int, objective: str, views: dict[str, View]) -> None:
    config = AllocationSettings(objective=objective)  # type: ignore[arg-type]
    first = allocate(data_of(seed, n, views), config, NOW)
    second = allocate(data_of(seed, n, views), config, NOW)
    assert first.weights == second.weights and first.method == second.method


def test_a_missing_view_is_not_a_view_of_zero() -> None:
    # the design filled a pair without a prediction with a 0 % view: the posterior was pulled to 0
    config = AllocationSettings()
    data = data_of(7, 4)
    none = allocate(data, config, NOW).inputs
    assert none["views_used"] == {} and none["posterior_returns"] == none["prior_returns"]
    assert all(r > 0.0 for r in none["prior_returns"].values())
    zero = allocate(data_of(7, 4, {"ETHBTC": View("ETHBTC", 0.0, 0.9, 10)}), config, NOW).inputs
    assert zero["posterior_returns"]["ETHBTC"] < 0.5 * none["prior_returns"]["ETHBTC"]
    one = allocate(data_of(7, 4, {"ADABTC": View("ADABTC", 0.01, 0.5, 10)}), config, NOW).inputs
    both = allocate(data_of(7, 4, {"ADABTC": View("ADABTC", 0.01, 0.5, 10), "ETHBTC": View("ETHBTC", 0.0, 0.5, 10)}),
                    config, NOW).inputs  # fmt: skip
    assert one["posterior_returns"]["ETHBTC"] != both["posterior_returns"]["ETHBTC"]
    assert one["views_used"].keys() == {"ADABTC"}


def test_two_pairs_under_a_forty_percent_cap_are_held_equally_and_say_why() -> None:
    targets = allocate(
        data_of(3, 2, {"ETHBTC": View("ETHBTC", 0.03, 0.9, 10)}), AllocationSettings(max_weight=0.4), NOW
    )
    assert targets.weights == {"ADABTC": 0.5, "ETHBTC": 0.5}
    assert targets.method == "cap/equal" and targets.fallback is None
    assert targets.inputs["cap"] == 0.5 and "1/2" in targets.inputs["cap_note"]


def test_too_few_returns_fall_back_to_the_capped_volume_prior(caplog: pytest.LogCaptureFixture) -> None:
    data = data_of(1, 4, days=8)
    with caplog.at_level(logging.WARNING):
        targets = allocate(data, AllocationSettings(min_returns=10), NOW)
    assert targets.method == "fallback/volume_prior"
    assert targets.fallback is not None and "too few returns: 7" in targets.fallback
    assert_valid(targets)
    volume = data.volumes.mean() / data.volumes.mean().sum()
    expected = capped(volume, 0.4)
    assert targets.weights == pytest.approx(expected.to_dict(), abs=1e-12)
    assert any("too few returns" in r.getMessage() for r in caplog.records)


def test_capping_hands_the_excess_on_pro_rata() -> None:
    weights = capped(pd.Series({"A": 0.7, "B": 0.2, "C": 0.1}), 0.4)
    assert weights.to_dict() == pytest.approx({"A": 0.4, "B": 0.4, "C": 0.2})


def test_a_pair_without_data_falls_back_and_gets_no_weight() -> None:
    closes, volumes = market(2, 4)
    closes["XMRBTC"] = np.nan
    volumes["XMRBTC"] = np.nan
    targets = allocate(AllocationData(AS_OF, closes, volumes), AllocationSettings(), NOW)
    assert targets.fallback is not None and "no data in the window for XMRBTC" in targets.fallback
    assert targets.weights["XMRBTC"] == 0.0
    assert_valid(targets)


def test_mixed_quotes_and_no_volume_fall_back_to_equal_weights() -> None:
    closes, volumes = market(2, 3, days=5)
    closes.columns = volumes.columns = ["BTCZAR", "ETHBTC", "ETHZAR"]
    targets = allocate(AllocationData(AS_OF, closes, volumes), AllocationSettings(), NOW)
    assert targets.method == "fallback/equal" and "do not compare" in targets.inputs["prior_source"]
    assert targets.weights == pytest.approx({"BTCZAR": 1 / 3, "ETHBTC": 1 / 3, "ETHZAR": 1 / 3})
    closes, volumes = market(2, 3, days=5)
    targets = allocate(AllocationData(AS_OF, closes, volumes * np.nan), AllocationSettings(), NOW)
    assert targets.method == "fallback/equal" and targets.inputs["prior_source"].startswith("equal: no quote volume")


def test_a_flat_price_or_an_infinite_close_is_a_stated_fallback() -> None:
    closes, volumes = market(4, 3)
    closes["ETHBTC"] = 1.0
    flat = allocate(AllocationData(AS_OF, closes, volumes), AllocationSettings(), NOW)
    assert flat.fallback is not None and "degenerate covariance" in flat.fallback
    closes, volumes = market(4, 3)
    closes.iloc[40, 1] = np.inf
    broken = allocate(AllocationData(AS_OF, closes, volumes), AllocationSettings(), NOW)
    assert broken.fallback is not None and "non-finite or non-positive closes for ETHBTC" in broken.fallback


def test_an_optimiser_that_raises_is_a_stated_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: EfficientFrontier, risk_free_rate: float = 0.0) -> None:
        raise OptimizationError("solver said no")

    monkeypatch.setattr(EfficientFrontier, "max_sharpe", fail)
    targets = allocate(data_of(5, 4), AllocationSettings(), NOW)
    assert targets.method == "fallback/volume_prior"
    assert targets.fallback is not None and "optimiser (max_sharpe) failed: OptimizationError" in targets.fallback
    assert targets.inputs["posterior_returns"] is not None  # what was reached before the failure is kept


def test_no_return_above_the_risk_free_rate_is_a_stated_fallback() -> None:
    views = {p: View(p, -0.05, 1.0, 10) for p in PAIRS[:4]}
    targets = allocate(data_of(6, 4, views), AllocationSettings(), NOW)
    assert all(r < 0 for r in targets.inputs["posterior_returns"].values())
    assert targets.fallback is not None and "risk-free rate" in targets.fallback
    assert_valid(targets)


def _shifted(targets: Targets, by: float) -> Targets:
    """The same targets with `by` moved from the largest weight to the smallest."""
    w = dict(targets.weights)
    top, low = max(w, key=w.__getitem__), min(w, key=w.__getitem__)
    w[top] -= by
    w[low] += by
    return Targets(w, targets.computed_at - timedelta(days=1), targets.as_of - timedelta(days=1), targets.method)


@pytest.mark.parametrize("objective", ["max_sharpe", "min_volatility"])
def test_the_targets_in_force_stay_when_the_gain_does_not_pay_the_cost(objective: str) -> None:
    config = AllocationSettings(objective=objective)  # type: ignore[arg-type]
    views = {"ETHBTC": View("ETHBTC", 0.004, 0.5, 10)}
    optimum = allocate(data_of(8, 5, views), config, NOW)
    previous = _shifted(optimum, 0.02)
    kept = allocate(data_of(8, 5, views, previous), config, NOW)
    assert kept.inputs["kept_previous"] is True and kept.weights == pytest.approx(dict(previous.weights))
    assert kept.inputs["turnover"] == 0.0 and kept.inputs["cost_rule"]["candidate_turnover"] == pytest.approx(0.04)
    free = allocate(data_of(8, 5, views, previous), config.model_copy(update={"cost": 0.0}), NOW)
    assert free.inputs["kept_previous"] is False and free.weights == pytest.approx(dict(optimum.weights), abs=1e-6)


@pytest.mark.parametrize(("objective", "cost"), [("max_sharpe", 0.0035), ("min_volatility", 0.0001)])
def test_new_targets_replace_the_ones_in_force_when_they_pay_the_cost(objective: str, cost: float) -> None:
    config = AllocationSettings(objective=objective, cost=cost)  # type: ignore[arg-type]
    views = {
        p: View(p, r, 1.0, 10) for p, r in [("ADABTC", 0.03), ("ETHBTC", 0.03), ("SOLBTC", -0.03), ("XMRBTC", -0.03)]
    }
    day = timedelta(days=1)
    previous = Targets(
        {"LTCBTC": 0.2, "SOLBTC": 0.4, "XMRBTC": 0.4}, NOW - day, AS_OF - day, "black_litterman/max_sharpe"
    )
    moved = allocate(data_of(8, 5, views, previous), config, NOW)
    rule = moved.inputs["cost_rule"]
    assert moved.inputs["kept_previous"] is False and moved.weights != previous.weights
    assert moved.inputs["turnover"] == pytest.approx(sum(abs(w - previous.weight(p)) for p, w in moved.weights.items()))
    if objective == "max_sharpe":
        assert rule["new_sharpe_net"] > rule["previous_sharpe"]
    else:
        spread = cost * moved.inputs["turnover"] / config.cost_days  # over the days the targets stand
        assert rule["variance_gain"] > rule["cost"] == pytest.approx(spread)


def test_max_utility_pays_the_cost_inside_its_objective() -> None:
    config = AllocationSettings(objective="max_utility")
    optimum = allocate(data_of(9, 4), config, NOW)
    previous = _shifted(optimum, 0.05)
    moved = allocate(data_of(9, 4, previous=previous), config, NOW)
    assert moved.inputs["cost_rule"]["rule"] == "in the objective" and moved.inputs["kept_previous"] is False
    assert moved.inputs["turnover"] == pytest.approx(
        sum(abs(moved.weights[p] - previous.weights[p]) for p in moved.weights)
    )
    assert moved.inputs["turnover"] < 0.1  # the cost pulls the answer toward the targets in force


def _candles(start: datetime, minutes: int, step: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=minutes // step, freq=f"{step}min")
    close = 100 * np.cumprod(1 + rng.normal(0, 0.001, len(ts)))
    volume = rng.uniform(1, 2, len(ts))
    return pd.DataFrame({"ts": ts, "open": close, "high": close, "low": close, "close": close, "volume": volume})


def test_daily_bars_use_only_the_days_that_ended_by_as_of() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    one = _candles(start, 4 * 1440, 1)
    as_of = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)  # the 3rd is under way: left out entirely
    closes, volumes = daily_frames({"ETHBTC": one}, as_of)
    assert list(closes.index) == list(pd.date_range("2024-01-01", "2024-01-02", freq="D", tz="UTC"))
    day2 = one[(one["ts"] >= "2024-01-02") & (one["ts"] < "2024-01-03")]
    assert closes.loc["2024-01-02", "ETHBTC"] == day2["close"].iloc[-1]
    assert volumes.loc["2024-01-02", "ETHBTC"] == pytest.approx((day2["close"] * day2["volume"]).sum())
    midnight = datetime(2024, 1, 3, tzinfo=UTC)  # the 2nd ended exactly at as_of: it counts
    assert closes.index[-1] == daily_frames({"ETHBTC": one}, midnight)[0].index[-1]


def test_daily_bars_do_not_depend_on_the_timeframe_and_keep_missing_days() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    one = _candles(start, 5 * 1440, 1)
    five = one.groupby(one["ts"].dt.floor("5min")).agg(close=("close", "last"), volume=("volume", "sum")).reset_index()
    gap = one[(one["ts"] < "2024-01-02") | (one["ts"] >= "2024-01-03")]
    as_of = datetime(2024, 1, 6, tzinfo=UTC)
    by_one, _ = daily_frames({"ETHBTC": one}, as_of)
    by_five, _ = daily_frames({"ETHBTC": five}, as_of)
    pd.testing.assert_frame_equal(by_one, by_five)
    with_gap, _ = daily_frames({"ETHBTC": gap, "LTCBTC": pd.DataFrame()}, as_of)
    assert np.isnan(with_gap.loc["2024-01-02", "ETHBTC"]) and with_gap["LTCBTC"].isna().all()
    assert list(with_gap.columns) == ["ETHBTC", "LTCBTC"] and len(with_gap) == 5
    rets = with_gap["ETHBTC"].pct_change(fill_method=None)
    assert rets.isna().sum() == 3  # the first day, the missing day and the day after it


def test_allocation_data_refuses_a_day_that_had_not_ended() -> None:
    closes, volumes = market(1, 2)
    with pytest.raises(ValueError, match="had not ended"):
        AllocationData(AS_OF - timedelta(days=1), closes, volumes)
