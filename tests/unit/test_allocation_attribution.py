"""Performance attribution (helios_core.allocation.attribution): hand-computed days, a short, an
all-cash day, fills valued across a day's boundaries (a trim, a close in parts), Carino linking, and properties that
the effects always add up to the excess return, per day and over a window."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_core.allocation.attribution import (
    CASH,
    DayAttribution,
    PairDay,
    PairFill,
    attribute_day,
    carino,
    closing,
    equal_weights,
    link,
    pair_day,
    volume_weights,
)

DAY = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, tzinfo=UTC)
TOL = 1e-12
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def segment(day: DayAttribution, name: str) -> tuple[float, float, float]:
    (found,) = [s for s in day.segments if s.segment == name]
    return found.effects.allocation, found.effects.selection, found.effects.interaction


def fill(hour: float, quantity: float, price: float, fee: float = 0.0) -> PairFill:
    return PairFill("BTCZAR", T0 + timedelta(hours=hour), quantity, price, fee)


def test_two_assets_in_one_sector_by_hand() -> None:
    """A and B in one sector, benchmark 1/2 each; r_A = +10 %, r_B = -5 %.
    Start weights w_A = 0.6, w_B = 0.2 (cash 0.2); contributions c_A = 0.05 (part of A sold
    during the day), c_B = -0.01.
    R_b = 0.5 x 0.10 + 0.5 x (-0.05) = 0.025; R_h = 0.6 x 0.10 + 0.2 x (-0.05) = 0.05; R_p = 0.04.
    crypto: w_p = 0.8, w_b = 1, r_p = 0.05 / 0.8 = 0.0625, r_b = 0.025.
      allocation = (0.8 - 1)(0.025 - 0.025) = 0
      selection = 1 x (0.0625 - 0.025) = 0.0375
      interaction = (0.8 - 1)(0.0625 - 0.025) = -0.0075
    cash: w = 0.2, allocation = 0.2 x (0 - 0.025) = -0.005.
    timing = R_p - R_h = -0.01 (A: 0.05 - 0.06 = -0.01, B: -0.01 - (-0.01) = 0).
    Sum: -0.005 + 0.0375 - 0.0075 - 0.01 = 0.015 = R_p - R_b."""
    day = attribute_day(DAY, [PairDay("A", 0.6, 0.05, 0.10, 0.5), PairDay("B", 0.2, -0.01, -0.05, 0.5)])

    assert day.portfolio_return == pytest.approx(0.04, abs=TOL)
    assert day.benchmark_return == pytest.approx(0.025, abs=TOL)
    assert day.held_return == pytest.approx(0.05, abs=TOL)
    assert segment(day, "crypto") == pytest.approx((0.0, 0.0375, -0.0075), abs=TOL)
    assert segment(day, CASH) == pytest.approx((-0.005, 0.0, 0.0), abs=TOL)
    (crypto, cash) = day.segments
    assert (crypto.portfolio_weight, crypto.portfolio_return, cash.portfolio_weight) == pytest.approx(
        (0.8, 0.0625, 0.2)
    )
    assert [p.timing for p in day.pairs] == pytest.approx([-0.01, 0.0], abs=TOL)
    assert day.totals.values() == pytest.approx((-0.005, 0.0375, -0.0075, -0.01), abs=TOL)
    assert day.totals.total == pytest.approx(0.015, abs=TOL)


def test_two_assets_in_two_sectors_by_hand() -> None:
    """The same day with A in "majors" and B in "alts": each segment holds one pair, so its
    portfolio and benchmark returns are that pair's and selection and interaction vanish.
    majors: allocation = (0.6 - 0.5)(0.10 - 0.025) = 0.0075
    alts: allocation = (0.2 - 0.5)(-0.05 - 0.025) = 0.0225
    cash: -0.005. Allocation 0.025 = R_h - R_b; timing -0.01 as before."""
    pairs = [PairDay("A", 0.6, 0.05, 0.10, 0.5, "majors"), PairDay("B", 0.2, -0.01, -0.05, 0.5, "alts")]
    day = attribute_day(DAY, pairs)

    assert [s.segment for s in day.segments] == ["alts", "majors", CASH]
    assert segment(day, "majors") == pytest.approx((0.0075, 0.0, 0.0), abs=TOL)
    assert segment(day, "alts") == pytest.approx((0.0225, 0.0, 0.0), abs=TOL)
    assert day.totals.values() == pytest.approx((0.025, 0.0, 0.0, -0.01), abs=TOL)


def test_a_short_held_all_day_is_an_allocation_to_cash() -> None:
    """Short 1 BTC at a start price of 500 on equity 1,000: w0 = -0.5 and cash 1.5. The price
    rises to 520 (r = 0.04): P&L -20, c = -0.02 = w0 x r (no trading, timing 0). Benchmark: the
    pair alone, R_b = 0.04. crypto: r_p = -0.02 / -0.5 = 0.04 = r_b, so its effects are 0;
    cash: 1.5 x (0 - 0.04) = -0.06 = R_p - R_b."""
    exposure, pnl = pair_day(-1.0, [], 500.0, 520.0)  # sold yesterday at 510: yesterday's
    assert (exposure, pnl) == (-500.0, -20.0)

    day = attribute_day(DAY, [PairDay("BTCZAR", exposure / 1000, pnl / 1000, 520 / 500 - 1, 1.0)])

    assert segment(day, "crypto") == pytest.approx((0.0, 0.0, 0.0), abs=TOL)
    assert segment(day, CASH) == pytest.approx((-0.06, 0.0, 0.0), abs=TOL)
    assert day.totals.timing == pytest.approx(0.0, abs=TOL)
    assert day.totals.total == pytest.approx(-0.06, abs=TOL)


def test_a_short_opened_and_closed_within_the_day_is_timing() -> None:
    """Sold at 510 at 09:00, bought back at 505 at 15:00, fees 1 each way: P&L 5 - 2 = 3, on
    equity 1,000 c = 0.003, w0 = 0 so all of it is timing."""
    short = [fill(9, -1.0, 510.0, 1.0), fill(15, 1.0, 505.0, 1.0)]
    exposure, pnl = pair_day(0.0, short, math.nan, math.nan)  # no boundary price is needed
    day = attribute_day(
        DAY, [PairDay("BTCZAR", exposure / 1000, pnl / 1000, math.nan, 0.0), PairDay("X", 0, 0, 0.01, 1)]
    )

    assert (exposure, pnl) == (0.0, 3.0)
    assert day.totals.timing == pytest.approx(0.003, abs=TOL)
    assert day.pairs[0].timing == pytest.approx(0.003, abs=TOL)
    assert day.totals.total == pytest.approx(0.003 - 0.01, abs=TOL)


def test_a_long_across_midnight_is_valued_at_the_boundary_prices() -> None:
    """Bought 2 yesterday at 19:00 at 100 (fee 0.4), sold today at 09:00 at 108 (fee 0.5); the
    price at midnight is 104. Yesterday: 0 at its start, 2 x 104 at its end, paid 200 and 0.4:
    P&L 208 - 200 - 0.4 = 7.6. Today: exposure 2 x 104 = 208, received 216 less 0.5, nothing at
    the end: P&L 0 - 208 + 216 - 0.5 = 7.5 (yesterday's fee is yesterday's)."""
    bought, sold = fill(-5, 2.0, 100.0, 0.4), fill(9, -2.0, 108.0, 0.5)

    assert pair_day(0.0, [bought], math.nan, 104.0) == pytest.approx((0.0, 7.6))
    assert closing(0.0, [bought]) == 2.0
    assert pair_day(2.0, [sold], 104.0, math.nan) == (208.0, 7.5)


def test_a_trim_keeps_the_rest_valued_at_the_close() -> None:
    """Long 3 at the start (price 100); 1 sold at 09:00 at 106 (fee 0.3); the day ends at 110.
    P&L = 2 x 110 - 3 x 100 + 106 - 0.3 = 25.7 = 3 x 10 - 1 x (110 - 106) - 0.3."""
    assert pair_day(3.0, [fill(9, -1.0, 106.0, 0.3)], 100.0, 110.0) == (300.0, pytest.approx(25.7))


def test_a_position_closed_in_parts_holds_nothing_after() -> None:
    parts = [fill(1, 0.1, 1.0), fill(2, -0.07, 1.0), fill(3, -0.02, 1.0), fill(4, -0.01, 1.0)]
    assert 0.1 - 0.07 - 0.02 - 0.01 != 0.0  # float dust, which must not need a closing price
    assert closing(0.0, parts) == 0.0
    assert pair_day(0.0, parts, math.nan, math.nan)[1] == pytest.approx(0.0)


def test_an_all_cash_day_loses_to_a_rising_benchmark_by_allocation() -> None:
    """No position; benchmark 1/2 each, r = +2 % and -4 %: R_b = -0.01, R_p = 0. crypto:
    w_p = 0 (no return), allocation (0 - 1)(-0.01 + 0.01) = 0; cash: 1 x (0 + 0.01) = 0.01."""
    day = attribute_day(DAY, [PairDay("A", 0, 0, 0.02, 0.5), PairDay("B", 0, 0, -0.04, 0.5)])

    assert day.portfolio_return == 0.0 and day.benchmark_return == pytest.approx(-0.01)
    crypto = day.segments[0]
    assert crypto.portfolio_return is None
    assert segment(day, "crypto") == pytest.approx((0.0, 0.0, 0.0), abs=TOL)
    assert segment(day, CASH) == pytest.approx((0.01, 0.0, 0.0), abs=TOL)
    assert day.totals.total == pytest.approx(0.01, abs=TOL)


def test_a_long_and_a_short_that_net_to_zero_are_selection() -> None:
    """Long A 0.5, short B 0.5 in one sector (net 0): held 0.5 x 0.10 - 0.5 x (-0.05) = 0.075,
    no return can be formed over a zero weight, so it is all selection: 0.075 - 0 x r_b."""
    day = attribute_day(DAY, [PairDay("A", 0.5, 0.05, 0.10, 0.5), PairDay("B", -0.5, 0.025, -0.05, 0.5)])

    assert segment(day, "crypto") == pytest.approx((0.0, 0.075, 0.0), abs=TOL)
    assert day.totals.total == pytest.approx(0.075 - 0.025, abs=TOL)


def test_two_days_linked_by_carino_by_hand() -> None:
    """Day 1: R_p = 0.10, R_b = 0.05; day 2: R_p = -0.02, R_b = 0.01 (all cash in the benchmark
    pair, everything earned by trading: timing). Window: R_p = 1.1 x 0.98 - 1 = 0.078,
    R_b = 1.05 x 1.01 - 1 = 0.0605, excess 0.0175.
    k1 = (ln 1.1 - ln 1.05) / 0.05 = 0.930400; k2 = (ln 0.98 - ln 1.01) / -0.03 = 1.005101;
    k = (ln 1.078 - ln 1.0605) / 0.0175 = 0.935256.
    timing = (0.10 x 0.930400 - 0.02 x 1.005101) / 0.935256 = 0.077987;
    allocation (cash) = (-0.05 x 0.930400 - 0.01 x 1.005101) / 0.935256 = -0.060487."""
    first = attribute_day(DAY, [PairDay("A", 0.0, 0.10, 0.05, 1.0)])
    second = attribute_day(DAY + timedelta(days=1), [PairDay("A", 0.0, -0.02, 0.01, 1.0)])

    window = link(DAY, DAY + timedelta(days=1), [first, second])

    assert window.linking == "carino"
    assert (window.portfolio_return, window.benchmark_return) == pytest.approx((0.078, 0.0605), abs=TOL)
    assert window.totals.timing == pytest.approx(0.077987, abs=1e-6)
    assert window.totals.allocation == pytest.approx(-0.060487, abs=1e-6)
    assert window.totals.total == pytest.approx(0.0175, abs=TOL)
    assert window.timing["A"] == pytest.approx(window.totals.timing, abs=TOL)
    assert window.segments[CASH].allocation == pytest.approx(window.totals.allocation, abs=TOL)


def test_carino_factor_limits_and_guards() -> None:
    assert carino(0.05, 0.05) == pytest.approx(1 / 1.05)
    assert carino(0.05 + 1e-15, 0.05) == pytest.approx(1 / 1.05)  # no cancellation near the limit
    assert carino(-1.0, 0.01) is None and carino(0.01, -1.5) is None
    empty = link(DAY, DAY, [])
    assert (empty.portfolio_return, empty.totals.total, empty.linking) == (0.0, 0.0, "carino")


def test_a_day_that_lost_everything_is_summed_not_linked() -> None:
    ruin = attribute_day(DAY, [PairDay("A", 2.0, -1.0, -0.5, 1.0)])
    window = link(DAY, DAY, [ruin])
    assert window.linking == "sum"
    assert window.totals.total == pytest.approx(ruin.totals.total)


def test_benchmark_weights() -> None:
    assert equal_weights(["B", "A", "B"]) == {"A": 0.5, "B": 0.5}
    assert equal_weights([]) == {}
    assert volume_weights({"A": 3.0, "B": 1.0, "C": 0.0, "D": math.nan}) == {"A": 0.75, "B": 0.25}
    assert volume_weights({"A": 0.0}) == {}


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        attribute_day(DAY, [PairDay("A", 0.5, 0.0, 0.1, 0.4)])
    with pytest.raises(ValueError, match="twice"):
        attribute_day(DAY, [PairDay("A", 0, 0, 0.1, 0.5), PairDay("A", 0, 0, 0.1, 0.5)])
    with pytest.raises(ValueError, match="finite market return"):
        PairDay("A", 0.5, 0.0, math.nan, 0.0)
    with pytest.raises(ValueError, match="cash segment"):
        PairDay("A", 0.5, 0.0, 0.1, 1.0, CASH)
    with pytest.raises(ValueError, match="timezone-aware"):
        PairFill("A", datetime(2026, 3, 2), 1.0, 1.0, 0.0)  # noqa: DTZ001 -- what it must refuse


SEGMENTS = st.sampled_from(["crypto", "majors", "alts"])
RETURN = st.floats(-0.5, 0.5)


@st.composite
def days(draw: st.DrawFn) -> list[PairDay]:
    n = draw(st.integers(1, 6))
    raw = draw(st.lists(st.floats(0.0, 10.0), min_size=n, max_size=n))
    if sum(raw) <= 0:
        raw = [1.0] * n
    benchmark = [b / sum(raw) for b in raw]
    pairs = []
    for i in range(n):
        weight = draw(st.one_of(st.just(0.0), st.floats(-2.0, 2.0)))
        weightless = weight == 0 and benchmark[i] == 0
        r = draw(st.one_of(RETURN, st.just(math.nan))) if weightless else draw(RETURN)
        pairs.append(PairDay(f"P{i}", weight, draw(st.floats(-0.15, 0.15)), r, benchmark[i], draw(SEGMENTS)))
    return pairs


@PROPERTY
@given(days())
def test_the_four_effects_add_up_to_the_excess_return(pairs: list[PairDay]) -> None:
    day = attribute_day(DAY, pairs)

    brinson = sum(s.effects.allocation + s.effects.selection + s.effects.interaction for s in day.segments)
    assert brinson == pytest.approx(day.held_return - day.benchmark_return, abs=1e-9)
    assert day.totals.timing == pytest.approx(day.portfolio_return - day.held_return, abs=1e-9)
    assert day.totals.total == pytest.approx(day.portfolio_return - day.benchmark_return, abs=1e-9)
    assert sum(p.timing for p in day.pairs) == pytest.approx(day.totals.timing, abs=1e-9)
    assert sum(s.portfolio_weight for s in day.segments) == pytest.approx(1.0, abs=1e-9)


@PROPERTY
@given(st.lists(days(), min_size=1, max_size=12))
def test_linked_effects_add_up_to_the_compounded_excess(window: list[list[PairDay]]) -> None:
    attributed = [attribute_day(DAY + timedelta(days=i), pairs) for i, pairs in enumerate(window)]

    linked = link(DAY, DAY + timedelta(days=len(window) - 1), attributed)

    compounded = math.prod(1 + d.portfolio_return for d in attributed) - math.prod(
        1 + d.benchmark_return for d in attributed
    )
    assert linked.linking == "carino"
    assert linked.totals.total == pytest.approx(compounded, abs=1e-9)
    assert sum(e.total for e in linked.segments.values()) == pytest.approx(compounded, abs=1e-9)
    assert sum(linked.timing.values()) == pytest.approx(linked.totals.timing, abs=1e-9)
