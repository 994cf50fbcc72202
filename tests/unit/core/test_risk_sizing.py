import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_core.risk.garch import REGIMES
from helios_core.risk.sizing import Sizing, SizingConfig, kelly, leverage, size

DEFAULT = SizingConfig()

probabilities = st.floats(min_value=0.0, max_value=1.0)
vols = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
regimes = st.sampled_from(REGIMES)
drawdowns = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
configs = st.builds(
    SizingConfig,
    min_confidence=st.sampled_from([0.05, 0.3, 0.55, 0.8]),
    reward_risk=st.floats(min_value=0.25, max_value=5.0),
    fractional_kelly=st.floats(min_value=0.01, max_value=1.0),
    max_leverage=st.floats(min_value=1.0, max_value=10.0),
)


def test_the_designs_worked_example() -> None:
    s = size(0.72, 0.03, "MEDIUM", 0.0, DEFAULT)
    assert s.approved and s.reason == ""
    assert s.kelly_full == pytest.approx(0.58)
    assert s.kelly_fractional == pytest.approx(0.145)
    assert s.vol_adjusted == pytest.approx(0.058)
    assert s.drawdown_adjusted == pytest.approx(0.058)
    assert (s.cap, s.max_hold_s) == (0.15, 86400.0)
    assert s.fraction == pytest.approx(0.058)
    assert s.stop_loss_pct == pytest.approx(0.06)
    assert s.take_profit_pct == pytest.approx(0.12)
    assert s.leverage == 1.1  # not the design's 1.5x: see `leverage`


def test_a_drawdown_beyond_the_threshold_halves_the_stake() -> None:
    calm = size(0.72, 0.03, "MEDIUM", 0.10, DEFAULT)  # at the threshold: not beyond
    hurt = size(0.72, 0.03, "MEDIUM", 0.1001, DEFAULT)
    assert calm.fraction == pytest.approx(0.058)
    assert hurt.drawdown_adjusted == pytest.approx(0.029) and hurt.fraction == pytest.approx(0.029)
    assert hurt.vol_adjusted == calm.vol_adjusted


def test_the_regime_cap_and_max_position_bind() -> None:
    s = size(0.99, 0.001, "EXTREME", 0.0, DEFAULT)
    assert s.drawdown_adjusted > 0.05 and (s.cap, s.fraction) == (0.05, 0.05)
    wide = SizingConfig(max_position=0.12)
    assert size(0.99, 0.001, "LOW", 0.0, wide).fraction == 0.12


def test_denials_keep_their_numbers_and_say_why() -> None:
    low = size(0.54, 0.03, "MEDIUM", 0.0, DEFAULT)
    assert (low.approved, low.fraction, low.leverage, low.reason) == (False, 0.0, 1.0, "confidence 0.540 below 0.55")
    assert low.kelly_full == pytest.approx(0.31) and low.vol_adjusted > 0 and low.stop_loss_pct == pytest.approx(0.06)

    no_edge = size(0.3, 0.03, "MEDIUM", 0.0, SizingConfig(min_confidence=0.1))
    assert no_edge.reason == "no edge: p=0.300 <= q/b=0.350" and no_edge.kelly_full == pytest.approx(-0.05)
    both = size(0.3, 0.03, "MEDIUM", 0.0, DEFAULT)
    assert both.reason == "confidence 0.300 below 0.55; no edge: p=0.300 <= q/b=0.350"

    for vol in (math.nan, math.inf, 0.0, -0.01):
        s = size(0.72, vol, "MEDIUM", 0.0, DEFAULT)
        assert (s.approved, s.fraction, s.leverage, s.reason) == (False, 0.0, 1.0, "no volatility estimate")
        assert s.kelly_fractional == pytest.approx(0.145) and math.isnan(s.vol_adjusted)
        assert math.isnan(s.stop_loss_pct) and math.isnan(s.take_profit_pct)


@given(probabilities, vols, regimes, drawdowns)
def test_fraction_stays_within_zero_and_the_cap(p: float, vol: float, regime: str, drawdown: float) -> None:
    s = size(p, vol, regime, drawdown, DEFAULT)
    assert s.cap == min(DEFAULT.regime_caps[regime], DEFAULT.max_position)
    assert 0.0 <= s.fraction <= s.cap
    assert s.take_profit_pct == pytest.approx(2 * s.stop_loss_pct)


@given(probabilities, vols, regimes, drawdowns, configs)
def test_no_trade_without_confidence_or_edge(
    p: float, vol: float, regime: str, drawdown: float, config: SizingConfig
) -> None:
    s = size(p, vol, regime, drawdown, config)
    q, b = 1 - p, config.reward_risk
    if p < config.min_confidence or p * b <= q:
        assert not s.approved and s.fraction == 0.0 and s.leverage == 1.0 and s.reason
    else:
        assert s.approved and s.fraction > 0.0 and s.reason == ""


@given(probabilities, probabilities, vols, regimes, drawdowns, configs)
def test_fraction_and_leverage_never_fall_as_confidence_rises(
    p1: float, p2: float, vol: float, regime: str, drawdown: float, config: SizingConfig
) -> None:
    lo, hi = sorted((p1, p2))
    small, large = size(lo, vol, regime, drawdown, config), size(hi, vol, regime, drawdown, config)
    assert small.fraction <= large.fraction
    assert small.leverage <= large.leverage
    assert leverage(lo, regime, drawdown, config) <= leverage(hi, regime, drawdown, config)


@given(probabilities, regimes, drawdowns, configs)
def test_leverage_stays_within_one_and_the_maximum(
    p: float, regime: str, drawdown: float, config: SizingConfig
) -> None:
    value = leverage(p, regime, drawdown, config)
    assert 1.0 <= value <= config.max_leverage
    assert value == round(value, 1) or value == config.max_leverage


@pytest.mark.parametrize(
    ("p", "regime", "drawdown", "expected"),
    [
        (0.90, "LOW", 0.0, 3.0),
        (0.95, "LOW", 0.0, 3.0),
        (0.80, "LOW", 0.0, 2.0),
        (0.90, "MEDIUM", 0.0, 2.0),
        (0.72, "MEDIUM", 0.0, 1.1),
        (0.70, "LOW", 0.0, 1.0),
        (0.99, "HIGH", 0.0, 1.0),
        (0.99, "EXTREME", 0.0, 1.0),
        (0.90, "LOW", 0.15, 2.0),  # beyond 10%: half the excess
        (0.90, "LOW", 0.21, 1.0),  # beyond 20%: none
    ],
)
def test_leverage_rule(p: float, regime: str, drawdown: float, expected: float) -> None:
    assert leverage(p, regime, drawdown, DEFAULT) == expected


def test_kelly_is_the_classic_formula_and_refuses_non_positive_odds() -> None:
    assert kelly(0.72, 2.0) == pytest.approx(0.58)
    assert kelly(1 / 3, 2.0) == pytest.approx(0.0)
    for b in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="odds"):
            kelly(0.6, b)


def test_callers_bugs_raise() -> None:
    with pytest.raises(ValueError, match="regime"):
        size(0.7, 0.03, "CALM", 0.0, DEFAULT)
    with pytest.raises(ValueError, match="regime"):
        leverage(0.7, "CALM", 0.0, DEFAULT)
    for p in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="probability"):
            size(p, 0.03, "LOW", 0.0, DEFAULT)
    for drawdown in (-0.01, math.nan):
        with pytest.raises(ValueError, match="drawdown"):
            size(0.7, 0.03, "LOW", drawdown, DEFAULT)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fractional_kelly": 0.0},
        {"fractional_kelly": 1.5},
        {"reward_risk": 0.0},
        {"min_confidence": 1.2},
        {"max_position": 0.0},
        {"vol_baseline": -0.02},
        {"drawdown_factor": 2.0},
        {"stop_vol_multiple": math.inf},
        {"max_hold_s": 0.0},
        {"max_leverage": 0.5},
        {"leverage_confidence_floor": 0.9, "leverage_confidence_full": 0.9},
        {"regime_caps": {"LOW": 0.2, "MEDIUM": 0.15, "HIGH": 0.1}},
        {"regime_caps": {"LOW": 0.2, "MEDIUM": 0.15, "HIGH": 0.1, "EXTREME": 0.0}},
    ],
)
def test_config_is_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SizingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen_hashable_and_owns_its_caps() -> None:
    caps = {"LOW": 0.3, "MEDIUM": 0.2, "HIGH": 0.1, "EXTREME": 0.01}
    config = SizingConfig(regime_caps=caps)
    caps["LOW"] = 1.0
    assert config.regime_caps["LOW"] == 0.3
    with pytest.raises(TypeError):
        config.regime_caps["LOW"] = 1.0  # type: ignore[index]  # read-only mapping
    same = SizingConfig(regime_caps=dict(config.regime_caps))
    assert config == same and hash(config) == hash(same)
    assert dict(DEFAULT.regime_caps) == {"LOW": 0.20, "MEDIUM": 0.15, "HIGH": 0.10, "EXTREME": 0.05}


def test_sizing_is_a_value() -> None:
    assert isinstance(size(0.72, 0.03, "MEDIUM", 0.0, DEFAULT), Sizing)
    assert size(0.72, 0.03, "MEDIUM", 0.0, DEFAULT) == size(0.72, 0.03, "MEDIUM", 0.0, DEFAULT)
