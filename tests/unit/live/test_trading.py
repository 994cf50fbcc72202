"""Paper fills, the paper account and the position lifecycle (stop-loss, take-profit, liquidation,
time-out, manual close), without the engine around them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_live.stream.events import Book
from helios_live.trading.account import Account
from helios_live.trading.paper import PaperConfig, market_fill, walk
from helios_live.trading.trader import Trader, TradingConfig, position_key

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
PAPER = PaperConfig(taker_fee=0.001, slippage_bps=10.0, book_max_age_s=10.0)
BOOK = Book("BTCZAR", NOW, bids=((99.0, 1.0), (98.0, 2.0)), asks=((101.0, 1.0), (102.0, 2.0)))


def test_a_market_buy_walks_the_asks_and_pays_the_taker_fee() -> None:
    fill = market_fill("BUY", 2.0, BOOK, 100.0, NOW, PAPER)

    assert fill.source == "BOOK" and fill.levels == 2
    assert fill.price == pytest.approx((101.0 + 102.0) / 2)
    assert fill.fee == pytest.approx(203.0 * 0.001)
    assert walk(BOOK.bids, 0.5) == (49.5, 0.5, 1)


def test_what_the_book_cannot_absorb_fills_beyond_its_worst_level() -> None:
    fill = market_fill("SELL", 4.0, BOOK, 100.0, NOW, PAPER)

    worst = 98.0 * (1 - 0.001)
    assert fill.price == pytest.approx((99.0 + 2 * 98.0 + worst) / 4)


def test_without_a_fresh_book_the_last_price_and_the_slippage_model_set_the_price() -> None:
    stale = market_fill("BUY", 1.0, BOOK, 100.0, NOW + 60, PAPER)
    none = market_fill("SELL", 1.0, None, 100.0, NOW, PAPER)

    assert stale.source == "LAST" and stale.price == pytest.approx(100.1)
    assert none.source == "LAST" and none.price == pytest.approx(99.9)
    with pytest.raises(ValueError, match="no order book and no last price"):
        market_fill("BUY", 1.0, None, float("nan"), NOW, PAPER)


def _trader(capital: float = 100_000.0) -> Trader:
    config = TradingConfig(capital=capital, paper=PAPER)
    trader = Trader(config, ("BTCZAR",))
    trader.account.mark("BTCZAR", 100.0, NOW)
    return trader


def _open(trader: Trader, side: str = "LONG", margin: float = 10_000.0, leverage: float = 2.0) -> str:
    key = position_key("BTCZAR", NOW, f"m-{side}-{margin}")
    trade, why = trader.open(key, "BTCZAR", side, margin, leverage, 0.05, 0.10, None, NOW, "PAPER")
    assert trade is not None, why
    return key


def test_opening_commits_margin_and_fee_and_sets_the_stops_from_the_fill() -> None:
    trader = _trader()
    key = _open(trader)
    position = trader.account.positions[key]

    assert position.entry_price == pytest.approx(100.1)  # last price plus 10 bps
    assert position.quantity == pytest.approx(200.0)  # 10,000 x 2 at the reference price 100
    assert position.stop_loss_price == pytest.approx(100.1 * 0.95)
    assert position.take_profit_price == pytest.approx(100.1 * 1.10)
    assert trader.account.cash == pytest.approx(100_000 - position.margin - position.entry_fee)
    assert trader.account.equity == pytest.approx(100_000 - position.entry_fee + 200 * (100.0 - 100.1))


@pytest.mark.parametrize(
    ("side", "price", "reason"),
    [
        ("LONG", 95.0, "STOP_LOSS"),
        ("LONG", 110.2, "TAKE_PROFIT"),
        ("SHORT", 105.2, "STOP_LOSS"),
        ("SHORT", 89.0, "TAKE_PROFIT"),
    ],
)
def test_a_price_through_a_stop_closes_the_position_at_the_market(side: str, price: float, reason: str) -> None:
    trader = _trader()
    key = _open(trader, side)

    assert trader.exits("BTCZAR", 100.0, NOW + 1, None, "PAPER") == []
    (trade,) = trader.exits("BTCZAR", price, NOW + 2, None, "PAPER")

    closed = trade.position
    assert closed.key == key and closed.status == "CLOSED" and closed.close_reason == reason
    assert trade.order.purpose == "CLOSE" and trade.order.side == ("SELL" if side == "LONG" else "BUY")
    assert (closed.realised_pnl or 0) > 0 if reason == "TAKE_PROFIT" else (closed.realised_pnl or 0) < 0
    assert not trader.account.positions
    # every unit of cash is accounted for: capital plus the realised result
    assert trader.account.cash == pytest.approx(100_000 + (closed.realised_pnl or 0))


def test_a_position_times_out_at_its_deadline_on_the_clock_alone() -> None:
    trader = _trader()
    key = _open(trader)
    deadline = trader.account.positions[key].deadline.timestamp()

    assert trader.exits("BTCZAR", 0.0, deadline - 1, None, "PAPER") == []
    (trade,) = trader.exits("BTCZAR", 0.0, deadline, None, "PAPER")
    assert trade.position.close_reason == "TIMEOUT"


def test_a_manual_close_and_an_unknown_key() -> None:
    trader = _trader()
    key = _open(trader)

    trade = trader.close(key, "MANUAL", NOW + 5, BOOK, "PAPER")
    assert trade.position.close_reason == "MANUAL" and trade.fill is not None and trade.fill.source == "BOOK"
    with pytest.raises(KeyError):
        trader.close(key, "MANUAL", NOW + 6, None, "PAPER")


def test_an_entry_the_cash_cannot_pay_for_is_refused() -> None:
    trader = _trader(capital=1_000.0)
    trade, why = trader.open("k", "BTCZAR", "LONG", 2_000.0, 1.0, 0.05, 0.1, None, NOW, "PAPER")

    assert trade is None and why.startswith("insufficient cash")
    assert trader.account.cash == 1_000.0


@settings(max_examples=150, deadline=None)
@given(
    moves=st.lists(st.floats(min_value=-0.6, max_value=0.6), min_size=1, max_size=40),
    leverage=st.floats(min_value=1.0, max_value=3.0),
    share=st.floats(min_value=0.01, max_value=0.9),
    short=st.booleans(),
)
def test_the_paper_account_never_goes_negative(moves: list[float], leverage: float, share: float, short: bool) -> None:
    trader = _trader(capital=10_000.0)
    price, now = 100.0, NOW
    trader.open("k", "BTCZAR", "SHORT" if short else "LONG", share * 10_000, leverage, 0.5, 5.0, None, now, "PAPER")
    for move in moves:
        price = max(price * (1 + move), 0.01)
        now += 60
        trader.exits("BTCZAR", price, now, None, "PAPER")
        assert trader.account.cash >= 0
    for key in list(trader.account.positions):
        trader.close(key, "MANUAL", now, None, "PAPER")
    assert trader.account.cash >= 0 and trader.account.equity == pytest.approx(trader.account.cash)


def test_the_account_rebuilds_its_cash_from_positions_not_snapshots() -> None:
    trader = _trader()
    kept = _open(trader)
    closed = _open(trader, "SHORT", margin=5_000.0)
    result = trader.close(closed, "MANUAL", NOW + 10, None, "PAPER").position

    rebuilt = Account.rebuild(
        100_000.0, result.realised_pnl or 0.0, [trader.account.positions[kept]], None, None, NOW + 20
    )

    assert rebuilt.cash == pytest.approx(trader.account.cash)
    assert set(rebuilt.positions) == {kept}


def test_history_from_before_an_opening_neither_closes_it_nor_moves_the_account() -> None:
    trader = _trader()
    key = _open(trader)
    peak, day_start = trader.account.peak, trader.account.day_start_equity

    # a restart replays the days before the position: far below its stop, and a day earlier
    assert trader.exits("BTCZAR", 50.0, NOW - 86_400, None, "PAPER") == []
    trader.account.mark("BTCZAR", 500.0, NOW - 3_600)

    assert key in trader.account.positions
    assert trader.account.marks["BTCZAR"] == 100.0 and trader.account.peak == peak
    assert trader.account.day_start_equity == day_start


def test_an_unrecorded_opening_or_close_is_undone_in_memory() -> None:
    trader = _trader()
    key = _open(trader)
    position = trader.account.positions[key]
    trade = trader.close(key, "MANUAL", NOW + 5, None, "PAPER")
    trader.account.undo_close(trade.position)

    assert trader.account.positions[key] == position
    trader.account.undo_open(position)
    assert not trader.account.positions and trader.account.cash == pytest.approx(100_000.0)
