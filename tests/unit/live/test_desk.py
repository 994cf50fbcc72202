"""The desk: orders through the mode's execution client, positions from their fills, exits on
prices and ticks. Paper fills come back at once; a venue's may come later, in parts, or never
(rejected, cancelled by the venue): the interface carries all of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helios_core.market import Book
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import CloseReason, OrderStatus, PositionSide, TradingMode
from helios_core.trading.fills import FillModel
from helios_core.trading.orders import Fill, OrderAccepted, OrderCanceled, OrderFilled, OrderIntent, OrderRejected
from helios_core.trading.position import Execution
from helios_live.execution import OrderEventSink
from helios_live.execution.paper import PaperExecutionClient
from helios_live.ledger import Ledger
from helios_live.ledger.writer import LedgerWriter
from helios_live.trading.desk import Desk, PositionError
from helios_live.trading.trader import TradingConfig

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
FILLS = FillModel(taker_fee=0.001, slippage_bps=10.0, book_max_age_s=10.0)
BOOK = Book("BTCZAR", NOW, bids=((99.0, 1.0), (98.0, 2.0)), asks=((101.0, 1000.0),))


class Venue:
    """A hand-written exchange that takes orders and answers when the test says so."""

    def __init__(self) -> None:
        self.sink: OrderEventSink | None = None
        self.intents: list[OrderIntent] = []

    def subscribe(self, sink: OrderEventSink) -> None:
        self.sink = sink

    async def submit(self, intent: OrderIntent) -> None:
        self.intents.append(intent)
        assert self.sink is not None
        self.sink(OrderAccepted(intent.client_order_id, intent.created_at.timestamp()))

    async def cancel(self, client_order_id: str) -> None:
        return None

    def fill(self, quantity: float, price: float, at: float) -> None:
        cid = self.intents[-1].client_order_id
        assert self.sink is not None
        self.sink(OrderFilled(cid, Fill(cid, price, quantity, 0.0, "TAKER", "VALR", 1, as_datetime(at)), at))

    def answer(self, event: OrderRejected | OrderCanceled) -> None:
        assert self.sink is not None
        self.sink(event)


def _desk(tmp_path: Path, capital: float = 100_000.0, book: Book | None = None) -> tuple[Desk, list[dict[str, Any]]]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    published: list[dict[str, Any]] = []
    books = {"BTCZAR": book} if book else {}
    desk = Desk(
        TradingConfig(capital=capital, fills=FILLS),
        ("BTCZAR",),
        LedgerWriter(ledger, ThreadPoolExecutor(1)),
        books.get,
        published.append,
    )
    desk.connect(TradingMode.PAPER, PaperExecutionClient(desk, FILLS))
    desk.account.mark("BTCZAR", 100.0, NOW)
    return desk, published


def _run(work: Callable[[], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        result = await work()
        await asyncio.sleep(0.05)  # the ledger writer's answers come back on the loop
        return result

    return asyncio.run(run())


async def _open(desk: Desk, side: PositionSide = PositionSide.LONG, margin: float = 10_000.0) -> Execution | str | None:
    return await desk.open("k", "BTCZAR", side, margin, 2.0, 0.05, 0.10, NOW)


async def _open_stored(desk: Desk) -> Execution:
    """A paper opening, stored as the kernel stores it (with its decision: here none)."""
    execution = await _open(desk)
    assert isinstance(execution, Execution)
    desk.writer.ledger.write(opens=[(None, execution)])
    return execution


def test_a_paper_opening_commits_margin_and_fee_and_sets_the_stops_from_the_fill(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path)

    execution = _run(lambda: _open(desk))

    assert isinstance(execution, Execution) and execution.order.status is OrderStatus.FILLED
    position = desk.account.positions["k"]
    assert position.entry_price == pytest.approx(100.1)  # last price plus 10 bps: no book
    assert position.quantity == pytest.approx(200.0)  # 10,000 x 2 at the reference price 100
    assert position.stop_loss_price == pytest.approx(100.1 * 0.95)
    assert position.take_profit_price == pytest.approx(100.1 * 1.10)
    assert desk.account.cash == pytest.approx(100_000 - position.margin - position.entry_fee)
    assert execution.order.intent.client_order_id == "k-O" and execution.order.fills[0].source == "LAST"


def test_a_paper_opening_walks_a_fresh_book_and_one_the_cash_cannot_pay_is_refused(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path, book=BOOK)
    poor, _ = _desk(tmp_path / "poor", capital=1_000.0)

    walked = _run(lambda: _open(desk))
    refused = _run(lambda: _open(poor, margin=2_000.0))

    assert isinstance(walked, Execution) and walked.order.fills[0].source == "BOOK"
    assert walked.position.entry_price == pytest.approx(101.0)  # the ask, reference the mid 100
    assert isinstance(refused, str) and refused.startswith("insufficient cash")
    assert poor.account.cash == 1_000.0 and not poor.account.positions and not poor.orders


def test_prices_and_ticks_close_positions_and_the_closes_reach_the_ledger(tmp_path: Path) -> None:
    desk, published = _desk(tmp_path)

    async def work() -> None:
        await _open_stored(desk)
        await desk.on_price("BTCZAR", 100.5, NOW + 1)
        assert "k" in desk.account.positions
        await desk.on_price("BTCZAR", 94.0, NOW + 2)  # through the stop

    _run(work)

    assert not desk.account.positions and desk.fills["STOP_LOSS"] == 1
    (closed,) = desk.writer.ledger.positions(status="CLOSED").items
    assert closed["close_reason"] == "STOP_LOSS" and closed["exit_price"] == pytest.approx(94.0 * 0.999)
    assert [e["event"] for e in published] == ["CLOSE"]
    assert desk.account.cash == pytest.approx(100_000 + closed["realised_pnl"])


def test_a_tick_at_the_deadline_times_a_position_out_and_a_manual_close_needs_an_open_one(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path)

    async def work() -> Execution:
        execution = await _open_stored(desk)
        deadline = execution.position.deadline.timestamp()
        await desk.on_price("BTCZAR", float("nan"), deadline - 1)
        assert "k" in desk.account.positions
        await desk.on_price("BTCZAR", float("nan"), deadline)
        with pytest.raises(PositionError, match="not open"):
            await desk.close("k", CloseReason.MANUAL, deadline + 1)
        return execution

    _run(work)
    assert desk.fills["TIMEOUT"] == 1


def test_in_a_mode_without_an_execution_client_an_opening_is_refused(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path)
    desk.mode = TradingMode.LIVE

    refused = _run(lambda: _open(desk))

    assert refused.startswith("no execution client for LIVE: it needs VALR credentials")


def _venue_desk(tmp_path: Path) -> tuple[Desk, Venue, list[dict[str, Any]]]:
    desk, published = _desk(tmp_path)
    venue = Venue()
    desk.connect(TradingMode.PAPER, venue)  # a venue in place of paper: fills when it says so
    return desk, venue, published


def test_a_fill_that_comes_after_the_order_was_placed_opens_the_position_then(tmp_path: Path) -> None:
    desk, venue, published = _venue_desk(tmp_path)

    async def work() -> Execution | str | None:
        placed = await _open(desk)
        assert not desk.account.positions and desk.orders["k-O"].status is OrderStatus.ACCEPTED
        venue.fill(200.0, 100.2, NOW + 3)
        return placed

    placed = _run(work)

    assert placed is None  # placed: its fill was still to come
    position = desk.account.positions["k"]
    assert position.entry_price == 100.2 and position.opened_at == as_datetime(NOW + 3)
    (stored,) = desk.writer.ledger.positions().items
    assert stored["key"] == "k" and stored["prediction_id"] is None
    assert [f["client_order_id"] for f in desk.writer.ledger.fills().items] == ["k-O"]
    assert [e["event"] for e in published] == ["OPEN"] and not desk.orders


def test_partial_fills_then_a_venue_cancel_open_what_was_filled(tmp_path: Path) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> None:
        await _open(desk)
        venue.fill(50.0, 100.0, NOW + 1)
        assert desk.orders["k-O"].status is OrderStatus.PARTIALLY_FILLED and not desk.account.positions
        venue.fill(30.0, 102.0, NOW + 2)
        venue.answer(OrderCanceled("k-O", "expired", NOW + 3))

    _run(work)

    position = desk.account.positions["k"]
    assert position.quantity == 80.0 and position.entry_price == pytest.approx((5000 + 3060) / 80)
    assert position.margin == pytest.approx((5000 + 3060) / 2)
    (order,) = desk.writer.ledger.orders().items
    assert order["status"] == "CANCELED" and order["reason"] == "expired"
    assert len(desk.writer.ledger.fills().items) == 2


def test_a_rejected_opening_opens_nothing_and_a_rejected_close_leaves_the_position_to_try_again(
    tmp_path: Path,
) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> None:
        await _open(desk)
        venue.answer(OrderRejected("k-O", "insufficient balance", NOW + 1))
        assert not desk.account.positions and not desk.orders
        await desk.open("k2", "BTCZAR", PositionSide.SHORT, 1_000.0, 1.0, 0.05, 0.1, NOW + 2)
        venue.fill(10.0, 100.0, NOW + 2)
        await desk.on_price("BTCZAR", 106.0, NOW + 3)  # through the short's stop: a close goes out
        venue.answer(OrderRejected("k2-C", "market closed", NOW + 4))

    _run(work)

    assert "k2" in desk.account.positions and desk.errors["close_not_filled"] == 1
    assert [i.client_order_id for i in venue.intents] == ["k-O", "k2-O", "k2-C"]


def test_a_close_that_fills_in_part_leaves_the_rest_open_and_the_next_close_sells_only_the_rest(
    tmp_path: Path,
) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> None:
        await _open(desk)
        venue.fill(200.0, 100.0, NOW + 1)
        await asyncio.sleep(0.05)  # the opening lands in the ledger
        await desk.on_price("BTCZAR", 94.0, NOW + 2)  # through the stop: a close of 200
        venue.fill(120.0, 94.0, NOW + 2)
        venue.answer(OrderCanceled("k-C", "book exhausted", NOW + 2))
        assert desk.account.positions["k"].quantity == 200.0  # still open, whole, until the rest is sold
        await desk.on_price("BTCZAR", 93.0, NOW + 3)  # the exit triggers again
        assert venue.intents[-1].client_order_id == "k-C2" and venue.intents[-1].quantity == pytest.approx(80.0)
        venue.fill(80.0, 93.0, NOW + 3)

    _run(work)

    assert not desk.account.positions
    (closed,) = desk.writer.ledger.positions(status="CLOSED").items
    assert closed["exit_price"] == pytest.approx((120 * 94.0 + 80 * 93.0) / 200)
    orders = {o["client_order_id"]: o for o in desk.writer.ledger.orders().items}
    assert set(orders) == {"k-O", "k-C", "k-C2"} and orders["k-C"]["status"] == "CANCELED"
    assert len(desk.writer.ledger.fills().items) == 3
