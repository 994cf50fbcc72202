"""The trading domain without a venue or an engine: market fills, the account, the exit rules
and the order state machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.market import Book
from helios_core.timeframes import as_datetime
from helios_core.trading.account import Account, PortfolioSnapshot
from helios_core.trading.enums import (
    CloseReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    PositionSide,
    PositionStatus,
    TradingMode,
)
from helios_core.trading.fills import FillModel, market_fill, walk
from helios_core.trading.orders import (
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
)
from helios_core.trading.position import Position, exit_reason, gross_pnl

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
FILLS = FillModel(taker_fee=0.001, slippage_bps=10.0, book_max_age_s=10.0)
BOOK = Book("BTCZAR", NOW, bids=((99.0, 1.0), (98.0, 2.0)), asks=((101.0, 1.0), (102.0, 2.0)))


def test_a_market_buy_walks_the_asks_and_pays_the_taker_fee() -> None:
    fill = market_fill(OrderSide.BUY, 2.0, BOOK, 100.0, NOW, FILLS)

    assert fill.source == "BOOK" and fill.levels == 2
    assert fill.price == pytest.approx((101.0 + 102.0) / 2)
    assert fill.fee == pytest.approx(203.0 * 0.001)
    assert walk(BOOK.bids, 0.5) == (49.5, 0.5, 1)


def test_what_the_book_cannot_absorb_fills_beyond_its_worst_level() -> None:
    fill = market_fill(OrderSide.SELL, 4.0, BOOK, 100.0, NOW, FILLS)

    worst = 98.0 * (1 - 0.001)
    assert fill.price == pytest.approx((99.0 + 2 * 98.0 + worst) / 4)


def test_without_a_book_of_the_moment_the_last_price_and_the_slippage_model_set_the_price() -> None:
    stale = market_fill(OrderSide.BUY, 1.0, BOOK, 100.0, NOW + 60, FILLS)
    future = market_fill(OrderSide.BUY, 1.0, BOOK, 100.0, NOW - 60, FILLS)  # a book from after `now`
    none = market_fill(OrderSide.SELL, 1.0, None, 100.0, NOW, FILLS)

    assert stale.source == future.source == "LAST" and stale.price == pytest.approx(100.1)
    assert none.source == "LAST" and none.price == pytest.approx(99.9)
    with pytest.raises(ValueError, match="no order book and no last price"):
        market_fill(OrderSide.BUY, 1.0, None, float("nan"), NOW, FILLS)


def _position(side: PositionSide = PositionSide.LONG, margin: float = 10_000.0, leverage: float = 2.0) -> Position:
    entry = 100.1
    long = side is PositionSide.LONG
    return Position(
        key=f"k-{side}-{margin}",
        pair="BTCZAR",
        side=side,
        status=PositionStatus.OPEN,
        quantity=margin * leverage / entry,
        entry_price=entry,
        margin=margin,
        leverage=leverage,
        stop_loss_price=entry * (0.95 if long else 1.05),
        take_profit_price=entry * (1.10 if long else 0.90),
        opened_at=as_datetime(NOW),
        deadline=as_datetime(NOW + 3600),
        entry_fee=margin * leverage * 0.001,
    )


@pytest.mark.parametrize(
    ("side", "price", "reason"),
    [
        (PositionSide.LONG, 95.0, CloseReason.STOP_LOSS),
        (PositionSide.LONG, 110.2, CloseReason.TAKE_PROFIT),
        (PositionSide.SHORT, 105.2, CloseReason.STOP_LOSS),
        (PositionSide.SHORT, 89.0, CloseReason.TAKE_PROFIT),
    ],
)
def test_a_price_through_a_stop_or_target_is_an_exit(side: PositionSide, price: float, reason: CloseReason) -> None:
    position = _position(side)

    assert exit_reason(position, 100.0, NOW + 1, 0.001) is None
    assert exit_reason(position, price, NOW + 1, 0.001) is reason


def test_liquidation_when_the_margin_is_gone_and_time_out_on_the_clock_alone() -> None:
    position = replace(_position(leverage=10.0), stop_loss_price=0.0)

    assert exit_reason(position, 90.0, NOW + 1, 0.001) is CloseReason.LIQUIDATION
    assert exit_reason(position, float("nan"), NOW + 3599, 0.001) is None
    assert exit_reason(position, float("nan"), NOW + 3600, 0.001) is CloseReason.TIMEOUT


def test_opening_and_closing_keep_every_unit_of_cash() -> None:
    account = Account(100_000.0)
    position = _position()
    account.open(position)
    account.mark("BTCZAR", 104.0, NOW + 1)

    assert account.cash == pytest.approx(100_000 - position.margin - position.entry_fee)
    assert account.equity == pytest.approx(account.cash + position.margin + gross_pnl(position, 104.0))
    closed = account.close(position.key, 104.0, 20.0, CloseReason.MANUAL, as_datetime(NOW + 2))

    assert closed.status is PositionStatus.CLOSED and not account.positions
    assert account.cash == pytest.approx(100_000 + (closed.realised_pnl or 0))


def test_an_entry_the_cash_cannot_pay_for_is_refused() -> None:
    account = Account(1_000.0)

    with pytest.raises(ValueError, match="needs"):
        account.open(_position(margin=2_000.0))
    assert account.cash == 1_000.0


@settings(max_examples=150, deadline=None)
@given(
    moves=st.lists(st.floats(min_value=-0.6, max_value=0.6), min_size=1, max_size=40),
    leverage=st.floats(min_value=1.0, max_value=3.0),
    share=st.floats(min_value=0.01, max_value=0.9),
    short=st.booleans(),
)
def test_the_account_never_goes_negative(moves: list[float], leverage: float, share: float, short: bool) -> None:
    account = Account(10_000.0)
    side = PositionSide.SHORT if short else PositionSide.LONG
    position = _position(side, share * 10_000 / 1.01, leverage)
    account.open(position)
    price, now = 100.0, NOW
    for move in moves:
        price = max(price * (1 + move), 0.01)
        now += 60
        account.mark("BTCZAR", price, now)
        if position.key in account.positions and exit_reason(position, price, now, 0.001) is not None:
            fill = market_fill(side.exit, position.quantity, None, price, now, FILLS)
            account.close(position.key, fill.price, fill.fee, CloseReason.STOP_LOSS, as_datetime(now))
        assert account.cash >= 0
    for key in list(account.positions):
        account.close(key, price, 0.0, CloseReason.MANUAL, as_datetime(now))
    assert account.cash >= 0 and account.equity == pytest.approx(account.cash)


def test_the_account_rebuilds_its_cash_from_positions_and_its_day_from_the_latest_snapshot() -> None:
    account = Account(100_000.0)
    kept, other = _position(), _position(PositionSide.SHORT, margin=5_000.0)
    account.open(kept)
    account.open(other)
    result = account.close(other.key, 99.0, 5.0, CloseReason.MANUAL, as_datetime(NOW + 10))
    account.mark("BTCZAR", 101.0, NOW + 11)
    latest = account.snapshot(NOW + 12, "FILL")

    rebuilt = Account.rebuild(100_000.0, result.realised_pnl or 0.0, [kept], latest)

    assert rebuilt.cash == pytest.approx(account.cash)
    assert set(rebuilt.positions) == {kept.key}
    assert (rebuilt.day, rebuilt.day_start_equity, rebuilt.peak) == (account.day, latest.day_start_equity, latest.peak)
    rebuilt.mark("BTCZAR", 100.0, NOW + 86_400)  # the first price of a later day starts that day
    assert rebuilt.day == account.day + 1 and rebuilt.day_start_equity == pytest.approx(rebuilt.equity)


def test_history_from_before_a_mark_moves_nothing() -> None:
    account = Account(100_000.0)
    account.open(_position())
    account.mark("BTCZAR", 100.0, NOW)
    peak, day_start = account.peak, account.day_start_equity

    account.mark("BTCZAR", 500.0, NOW - 3_600)  # a restart replays the hours before

    assert account.marks["BTCZAR"] == 100.0 and account.peak == peak and account.day_start_equity == day_start


def test_an_unrecorded_opening_or_close_is_undone_in_memory() -> None:
    account = Account(100_000.0)
    position = _position()
    account.open(position)
    closed = account.close(position.key, 101.0, 1.0, CloseReason.MANUAL, as_datetime(NOW + 5))
    account.undo_close(closed)

    assert account.positions[position.key] == position
    account.undo_open(position)
    assert not account.positions and account.cash == pytest.approx(100_000.0)


def _intent(quantity: float = 2.0) -> OrderIntent:
    return OrderIntent(
        "k-O", "k", "BTCZAR", OrderSide.BUY, OrderPurpose.OPEN, quantity, TradingMode.PAPER, as_datetime(NOW)
    )


def _fill(quantity: float, price: float) -> OrderFilled:
    return OrderFilled("k-O", Fill("k-O", price, quantity, 0.1, "TAKER", "BOOK", 1, as_datetime(NOW)), NOW)


def test_an_order_folds_its_events_partial_fills_included_and_ignores_any_after_the_end() -> None:
    order = Order(_intent()).apply(OrderAccepted("k-O", NOW))
    partly = order.apply(_fill(0.5, 100.0))
    full = partly.apply(_fill(1.5, 104.0))

    assert order.status is OrderStatus.ACCEPTED and partly.status is OrderStatus.PARTIALLY_FILLED
    assert full.status is OrderStatus.FILLED and full.filled_quantity == 2.0
    assert full.average_price == pytest.approx((50.0 + 156.0) / 2.0) and full.fees == pytest.approx(0.2)
    assert full.apply(OrderCanceled("k-O", "late", NOW)) == full  # terminal: nothing changes it


def test_rejections_and_venue_cancels_end_an_order_with_their_reason() -> None:
    rejected = Order(_intent()).apply(OrderRejected("k-O", "insufficient balance", NOW))
    cancelled = Order(_intent()).apply(_fill(0.5, 100.0)).apply(OrderCanceled("k-O", "expired", NOW))

    assert rejected.status is OrderStatus.REJECTED and rejected.reason == "insufficient balance"
    assert cancelled.status is OrderStatus.CANCELED and cancelled.filled_quantity == 0.5
    with pytest.raises(ValueError, match="applied to order"):
        Order(_intent()).apply(OrderAccepted("other", NOW))


def test_intents_and_snapshots_refuse_what_they_cannot_mean() -> None:
    with pytest.raises(ValueError, match="quantity"):
        _intent(quantity=0.0)
    with pytest.raises(ValueError, match="naive"):
        PortfolioSnapshot(datetime(2026, 1, 1), 1, 0, 0, 1, 1, 0, 1, 0, 0, "FILL")  # noqa: DTZ001 -- refused
