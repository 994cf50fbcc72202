"""The order book and its features on a real Binance BTCUSDT futures depth stream."""

import pandas as pd
import pytest

from helios_core.errors import DataValidationError
from helios_core.orderbook import OrderBook
from tests.conftest import shared_data


@pytest.fixture
def binance() -> tuple[pd.DataFrame, pd.DataFrame]:
    snapshot = shared_data("orderbook/BTCUSDT_depth_snapshot_2022-11-01.csv")
    updates = shared_data("orderbook/BTCUSDT_depth_updates_2022-11-01.csv")
    return pd.read_csv(snapshot), pd.read_csv(updates)


def test_snapshot_then_updates_rebuild_an_uncrossed_book(binance: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    snapshot, updates = binance
    book = OrderBook()
    for row in snapshot.itertuples():
        book.set(row.side, row.price, row.qty)
    assert book.top() is None  # the snapshot holds bids only: no two-sided top yet
    for row in updates.itertuples():
        book.set(row.side, row.price, row.qty)
    top = book.top(levels=10)
    assert top is not None
    assert (top.bid, top.ask) == (20472.1, 20472.2)
    assert top.spread == pytest.approx(0.1 / 20472.15)
    assert -1 < top.imbalance < 1 and top.bid_qty > 0 and top.ask_qty > 0
    deleted = updates.loc[updates["qty"] == 0, ["side", "price"]]
    for side, price in deleted.itertuples(index=False):
        assert price not in (book.bids if side == "b" else book.asks)


def test_zero_quantity_deletes_and_bad_levels_are_refused() -> None:
    book = OrderBook()
    book.set("b", 100.0, 2.0)
    book.set("a", 101.0, 1.0)
    assert book.top() is not None and book.top().imbalance == pytest.approx(1 / 3)  # type: ignore[union-attr]
    book.set("a", 101.0, 0.0)
    assert book.top() is None
    with pytest.raises(DataValidationError):
        book.set("b", -1.0, 1.0)


def test_a_crossed_book_has_no_top() -> None:
    book = OrderBook()
    book.set("bid", 101.0, 1.0)
    book.set("ask", 100.0, 1.0)
    assert book.top() is None
