"""Trims (a rebalance selling part of a position) at the desk, against a venue that answers
when the test says so: a trim never goes out beside a close, an exit that meets a trim in flight
goes the moment the trim ends (the emergency stop included), a trim the venue fills whole is a
close, and trims the ledger refused are undone in any order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from helios_core.trading.account import Account
from helios_core.trading.enums import CloseReason, OrderPurpose
from helios_core.trading.orders import OrderCanceled
from helios_core.trading.position import Execution
from tests.unit.live.test_desk import NOW, _open, _run, _venue_desk


def test_a_trim_waits_for_no_close_and_an_exit_meeting_a_trim_goes_when_it_ends(tmp_path: Path) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> None:
        await _open(desk)
        venue.fill(200.0, 100.0, NOW + 1)
        await asyncio.sleep(0.05)
        assert await desk.trim("k", 50.0, NOW + 2) is None  # out: its fill is still to come
        assert await desk.trim("k", 10.0, NOW + 2) == "a trim of it is out already: the next check trims again"
        closed = await desk.close_all(CloseReason.EMERGENCY, NOW + 3)  # the emergency stop meets the trim
        assert closed == [] and [i.purpose for i in venue.intents] == [OrderPurpose.OPEN, OrderPurpose.REDUCE]
        venue.fill(50.0, 99.0, NOW + 4)  # the trim ends: the close goes out at once, for what is left
        await asyncio.sleep(0.05)
        close = venue.intents[-1]
        assert close.purpose is OrderPurpose.CLOSE and close.reason == CloseReason.EMERGENCY
        assert close.quantity == pytest.approx(150.0)
        venue.fill(150.0, 98.0, NOW + 5)
        await asyncio.sleep(0.05)

    _run(work)
    assert not desk.account.positions
    (closed,) = desk.writer.ledger.positions(status="CLOSED").items
    assert closed["close_reason"] == "EMERGENCY" and closed["quantity"] == pytest.approx(150.0)
    assert desk.writer.ledger.trimmed() == {"k": (50.0, 0.0)}


def test_a_position_whose_close_filled_in_part_is_not_trimmed(tmp_path: Path) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> None:
        await _open(desk)
        venue.fill(200.0, 100.0, NOW + 1)
        await asyncio.sleep(0.05)
        await desk.on_price("BTCZAR", 94.0, NOW + 2)  # through the stop: a close of 200
        venue.fill(120.0, 94.0, NOW + 2)
        venue.answer(OrderCanceled("k-C", "book exhausted", NOW + 2))
        # The venue holds 80 now, the account 200 until the close is done: a trim of 100 would
        # oversell, and the next close (200 - 120) would go negative.
        assert await desk.trim("k", 100.0, NOW + 3) == "it is being closed: nothing to trim"
        await desk.on_price("BTCZAR", 93.0, NOW + 3)
        assert venue.intents[-1].quantity == pytest.approx(80.0)

    _run(work)


def test_a_trim_the_venue_fills_whole_closes_the_position(tmp_path: Path) -> None:
    desk, venue, _ = _venue_desk(tmp_path)

    async def work() -> Execution | str | None:
        await _open(desk)
        venue.fill(200.0, 100.0, NOW + 1)
        await asyncio.sleep(0.05)
        await desk.trim("k", 199.99999, NOW + 2)
        venue.fill(200.0, 100.0, NOW + 2)  # the venue's rounding took all of it
        await asyncio.sleep(0.05)
        return None

    _run(work)
    assert not desk.account.positions
    (closed,) = desk.writer.ledger.positions(status="CLOSED").items
    assert closed["close_reason"] == "REBALANCE"


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_trims_and_a_close_the_ledger_refused_are_undone_in_either_order(order: str) -> None:
    from tests.unit.core.test_allocation_rebalance import position

    account = Account(10_000.0)
    start = position("A", 10.0, margin=1_000.0)
    account.open(start)
    cash = account.cash
    one = account.reduce("k-A", 4.0, 110.0, 0.5)
    two = account.reduce("k-A", 3.0, 120.0, 0.5)
    closed = account.close("k-A", 90.0, 0.5, CloseReason.STOP_LOSS, start.opened_at)
    undos = [partial(account.undo_reduce, start, one), partial(account.undo_reduce, one, two),
             partial(account.undo_close, closed)]  # fmt: skip
    for undo in undos if order == "forward" else reversed(undos):
        undo()
    assert account.positions["k-A"] == start
    assert account.cash == pytest.approx(cash)


def test_a_spooled_position_from_before_trims_existed_loads_with_none_realised() -> None:
    from tests.unit.core.test_allocation_rebalance import position

    held = replace(position("A", 1.0), reduced_pnl=5.0)
    old = held.__getstate__()[:-1]  # pickled by a version without `reduced_pnl`
    loaded = type(held).__new__(type(held))
    loaded.__setstate__(old)
    assert loaded == replace(held, reduced_pnl=0.0)
