"""Rebalancing's arithmetic: drift below and above the threshold, trims to target, a target of 0
closing, emergencies that only reduce, the entry cap, and the account through trims (cash,
margin and the ledger's rebuild agree after any sequence of them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.allocation.rebalance import drift_limits, emergency_limits, entry_cap, trims
from helios_core.allocation.targets import Targets, weights
from helios_core.trading.account import Account
from helios_core.trading.enums import CloseReason, PositionSide, PositionStatus
from helios_core.trading.position import Position

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def position(pair: str, quantity: float, price: float = 100.0, margin: float | None = None, key: str = "") -> Position:
    return Position(
        key or f"k-{pair}", pair, PositionSide.LONG, PositionStatus.OPEN, quantity, price,
        margin if margin is not None else quantity * price, 1.0, price * 0.9, price * 1.2, T0,
        T0 + timedelta(days=1), entry_fee=1.0,
    )  # fmt: skip


def test_weights_are_gross_exposure_over_equity_and_a_short_counts_as_much_as_a_long() -> None:
    long = position("A", 10.0)
    short = replace(long, key="s", pair="B", side=PositionSide.SHORT)
    assert weights([long, short], {"A": 110.0, "B": 90.0}, 10_000.0) == {"A": 0.11, "B": 0.09}
    assert weights([long], {}, 0.0) == {}  # no equity: nothing to weigh, no division by zero


def test_drift_below_the_threshold_trims_nothing_and_above_it_trims_back_to_target() -> None:
    held = [position("A", 30.0), position("B", 10.0)]  # 30 % and 10 % of 10,000
    marks = {"A": 100.0, "B": 100.0}
    targets = {"A": 0.26, "B": 0.74}
    assert drift_limits(weights(held, marks, 10_000.0), targets, 0.05) == {}  # 4 points over: below 5
    targets = {"A": 0.24, "B": 0.76}
    limits = drift_limits(weights(held, marks, 10_000.0), targets, 0.05)
    assert limits == {"A": 0.24}  # 6 points over; B is under target and never bought
    (trim,) = trims(held, marks, 10_000.0, limits)
    assert trim.pair == "A" and trim.quantity == pytest.approx(6.0) and not trim.close
    assert trim.weight_before == pytest.approx(0.30) and trim.weight_after == 0.24


def test_a_pair_the_targets_leave_out_is_closed_and_the_weekly_threshold_is_tighter() -> None:
    held = [position("A", 3.0)]  # 3 %
    assert drift_limits({"A": 0.03}, {"B": 1.0}, 0.05) == {}  # daily: 3 points over a target of 0
    limits = drift_limits({"A": 0.03}, {"B": 1.0}, 0.01)  # weekly
    (trim,) = trims(held, {"A": 100.0}, 10_000.0, limits)
    assert trim.close and trim.quantity == 3.0


def test_an_emergency_only_reduces_and_ignores_pairs_it_does_not_name() -> None:
    now = {"A": 0.30, "B": 0.10}
    assert emergency_limits(now, {"A": 0.40, "B": 0.05}, ["A"], 0.5) == {"A": 0.15}
    assert emergency_limits(now, {"A": 0.20}, ["A"], 0.5) == {"A": 0.10}  # half of the lower target
    assert emergency_limits(now, None, ["A", "C"], 0.0) == {"A": 0.0, "C": 0.0}
    for factor in (0.0, 0.5, 1.0):
        for pair, limit in emergency_limits(now, {"A": 0.9, "B": 0.9}, ["A", "B"], factor).items():
            assert limit <= now[pair]


def test_the_entry_cap_leaves_room_to_target_plus_band_at_the_entry_leverage() -> None:
    assert entry_cap(0.20, 0.05, 0.0, 1.0) == pytest.approx(0.25)
    assert entry_cap(0.20, 0.05, 0.0, 2.5) == pytest.approx(0.10)
    assert entry_cap(0.20, 0.05, 0.30, 1.0) == 0.0  # already above: no room, never negative
    assert entry_cap(0.0, 0.0, 0.0, 1.0) == 0.0


def test_targets_must_be_weights_that_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        Targets({"A": 0.5}, T0, T0, "x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Targets({"A": 1.5, "B": -0.5}, T0, T0, "x")
    with pytest.raises(ValueError, match="timezone-aware"):
        Targets({"A": 1.0}, datetime(2024, 1, 1), T0, "x")  # noqa: DTZ001 -- the naive one refused


@settings(max_examples=200, deadline=None)
@given(
    shares=st.lists(st.floats(0.01, 0.9), min_size=1, max_size=4),
    prices=st.lists(st.floats(50.0, 200.0), min_size=5, max_size=5),
)
def test_any_trims_then_a_close_keep_cash_and_the_rebuild_in_agreement(
    shares: list[float], prices: list[float]
) -> None:
    account = Account(10_000.0)
    p = position("A", 20.0, margin=2_000.0)
    account.open(p)
    for share, price in zip(shares, prices, strict=False):
        held = account.positions[p.key]
        before_cash, before = account.cash, held
        after = account.reduce(p.key, held.quantity * share, price, fee=price * held.quantity * share * 0.001)
        # what a restart rebuilds from the rows: capital + trims' P&L - what the position still holds
        rebuilt = Account.rebuild(10_000.0, after.reduced_pnl, [after], None)
        assert rebuilt.cash == pytest.approx(account.cash)
        assert after.margin == pytest.approx(before.margin * (1 - share))
        account.undo_reduce(before, after)
        assert account.cash == pytest.approx(before_cash) and account.positions[p.key] == before
        account.reduce(p.key, held.quantity * share, price, fee=price * held.quantity * share * 0.001)
    closed = account.close(p.key, prices[-1], 1.0, CloseReason.REBALANCE, T0)
    assert account.cash == pytest.approx(10_000.0 + (closed.realised_pnl or 0.0))
    account.undo_close(closed)
    assert account.cash == pytest.approx(10_000.0 + closed.reduced_pnl - closed.margin - closed.entry_fee)


def test_a_trim_of_all_or_nothing_is_refused() -> None:
    account = Account(10_000.0)
    account.open(position("A", 5.0))
    for quantity in (0.0, 5.0, 6.0):
        with pytest.raises(ValueError, match="must sell less"):
            account.reduce("k-A", quantity, 100.0, 0.0)
