"""LIVE execution against a VALR on loopback (the fake VALR server, which verifies every
signature): the order lifecycle, idempotent retries, partial fills, refusals, a dropped account
stream and bad messages, each with its journal rows and never a second order."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helios_core.trading.enums import CloseReason
from helios_core.trading.position import Execution
from helios_live.ledger import Ledger
from helios_live.venues.valr.simulator.fake import FakeValr
from helios_live.venues.valr.trading import order_request
from tests.conftest import REPO
from tests.ledger_support import temporary_database
from tests.valr_support import KEY, SECRET, Rig, rig, until


@pytest.fixture
def fake() -> Iterator[FakeValr]:
    with FakeValr(api_key=KEY, api_secret=SECRET) as server:
        yield server


def _run(
    tmp_path: Path, fake: FakeValr, work: Callable[[Rig], Awaitable[Any]], stream: bool = True, **options: Any
) -> Rig:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()

    async def main() -> Any:
        live = await rig(ledger, fake.url, fake.ws_url, **options).start(stream)
        try:
            live.result = await work(live)
        finally:
            await live.close()
        return live

    return asyncio.run(main())


def _statuses(live: Rig, cid: str) -> list[str]:
    return [t["status"] for t in live.ledger.order_transitions(cid)]


async def _filled(live: Rig, key: str = "k") -> None:
    await until(lambda: live.ledger.positions(status="OPEN").items or live.ledger.positions(status="CLOSED").items,
                what=f"position {key} in the ledger")  # fmt: skip


def test_an_order_lives_from_intent_to_fill_and_its_close_too(tmp_path: Path, fake: FakeValr) -> None:
    async def work(live: Rig) -> None:
        placed = await live.open()
        assert placed is None or isinstance(placed, Execution)  # the fill comes on the stream
        await _filled(live)
        position = live.desk.account.positions["k"]
        (trade,) = [t for t in fake.trades() if t["customerOrderId"] == "k-O"]
        assert position.quantity == pytest.approx(float(trade["quantity"]) - float(trade["fee"]))  # fee in BTC
        assert position.entry_fee == pytest.approx(float(trade["fee"]) * float(trade["price"]))
        assert position.stop_loss_price == pytest.approx(position.entry_price * 0.95)
        await live.desk.close_all(CloseReason.MANUAL, time.time())
        await until(lambda: not live.desk.account.positions, what="the close's fill")
        await asyncio.sleep(0.1)

    live = _run(tmp_path, fake, work)
    assert _statuses(live, "k-O") == ["NEW", "ACCEPTED", "FILLED"]
    assert _statuses(live, "k-C") == ["NEW", "ACCEPTED", "FILLED"]
    (closed,) = live.ledger.positions(status="CLOSED").items
    assert closed["realised_pnl"] < 0  # two fees and the spread, on a market that did not move
    assert len(fake.orders_by_customer_id("k-O")) == 1 and len(fake.orders_by_customer_id("k-C")) == 1
    entry = live.ledger.journal_entry("k-O")
    assert (
        entry is not None and entry.intent.opening is not None and entry.intent.request["path"] == "/v1/orders/market"
    )


@pytest.mark.parametrize("place", [True, False], ids=["placed-then-timed-out", "timed-out-unplaced"])
def test_a_timed_out_placement_is_resolved_by_its_customer_id_never_sent_twice(
    tmp_path: Path, fake: FakeValr, place: bool
) -> None:
    fake.timeout_next(delay_s=1.5, place=place)

    async def work(live: Rig) -> None:
        await live.open()
        await live.client.catch_up()  # the status poll's job, with no stream to tell
        await _filled(live)

    # Without the account stream: only asking VALR by the customer id can tell what became of it.
    live = _run(tmp_path, fake, work, stream=False, timeout_s=0.5)
    assert len(fake.orders_by_customer_id("k-O")) == 1
    statuses = _statuses(live, "k-O")
    assert statuses[:2] == ["NEW", "UNKNOWN"] and statuses[-1] == "FILLED"


def test_a_server_error_and_a_rate_limit_cost_no_duplicate(tmp_path: Path, fake: FakeValr) -> None:
    fake.fail_next(503)
    fake.fail_next(429, retry_after_s=0.05)

    async def work(live: Rig) -> Any:
        await live.open()
        await _filled(live)
        return live.client.rest.stats

    stats = _run(tmp_path, fake, work).client.rest.stats
    assert len(fake.orders_by_customer_id("k-O")) == 1
    assert stats.rate_limited == 1


def test_a_refused_order_is_a_recorded_failure_with_the_reason(tmp_path: Path, fake: FakeValr) -> None:
    fake.reject_next("Insufficient Balance")

    live_result: list[Any] = []

    async def capture(live: Rig) -> None:
        live_result.append(await live.open())

    live = _run(tmp_path, fake, capture)
    assert isinstance(live_result[0], str) and "Insufficient Balance" in live_result[0]
    assert _statuses(live, "k-O") == ["NEW", "FAILED"] and not live.desk.account.positions


def test_an_order_below_valrs_minimum_is_denied_before_anything_is_sent(tmp_path: Path, fake: FakeValr) -> None:
    result: list[Any] = []

    async def work(live: Rig) -> None:
        result.append(await live.open(margin=50.0))  # 0.00004 BTC: below the 0.0001 minimum

    live = _run(tmp_path, fake, work)
    assert "below VALR's minimum" in result[0]
    assert live.ledger.journal_entry("k-O") is None and not fake.orders_by_customer_id("k-O")


def test_the_per_order_cap_denies_a_large_opening(tmp_path: Path, fake: FakeValr) -> None:
    result: list[Any] = []

    async def work(live: Rig) -> None:
        result.append(await live.open(margin=120_000.0))

    _run(tmp_path, fake, work, max_order_notional=50_000.0)
    assert "above the LIVE cap per order" in result[0] and not fake.orders_by_customer_id("k-O")


def test_a_partial_fill_opens_what_filled_with_stops_on_it(tmp_path: Path, fake: FakeValr) -> None:
    fake.partial_next(0.5)

    async def work(live: Rig) -> Any:
        await live.open()
        await _filled(live)
        held = live.desk.account.positions["k"]
        assert live.desk.account.cash == pytest.approx(1_000_000 - held.margin - held.entry_fee)
        await live.desk.on_price("BTCZAR", held.stop_loss_price * 0.999, time.time())  # through the stop
        await until(lambda: "k" not in live.desk.account.positions, what="the stop's close")
        return held

    live = _run(tmp_path, fake, work)
    (order,) = fake.orders_by_customer_id("k-O")
    position = live.result
    traded = sum(float(t["quantity"]) - float(t["fee"]) for t in fake.trades() if t["customerOrderId"] == "k-O")
    assert position.quantity == pytest.approx(traded) and traded < 0.01 * 0.6
    assert _statuses(live, "k-O")[-1] == "CANCELLED"
    (close,) = fake.orders_by_customer_id("k-C")  # the stop sold what was filled, no more
    assert float(close["originalQuantity"]) == pytest.approx(float(f"{position.quantity:.8f}"))


def test_after_the_stream_drops_rest_fills_the_hole(tmp_path: Path, fake: FakeValr) -> None:
    async def work(live: Rig) -> None:
        fake.refuse_streams(0.5)
        fake.drop_streams()
        await until(lambda: not live.stream.stats.connected, what="the drop")
        await live.open()  # its events go to nobody
        await until(lambda: live.stream.stats.connected, what="the reconnect")
        await _filled(live)

    live = _run(tmp_path, fake, work)
    assert _statuses(live, "k-O")[-1] == "FILLED" and len(fake.orders_by_customer_id("k-O")) == 1


def test_malformed_and_unknown_account_messages_are_counted_not_fatal(tmp_path: Path, fake: FakeValr) -> None:
    async def work(live: Rig) -> None:
        fake.send_raw("not json at all")
        fake.send_raw('{"type":"NEW_ACCOUNT_TRADE","data":{"id":"x","price":"-1"}}')
        fake.send_raw('{"type":"ORDER_STATUS_UPDATE","data":{"orderId":"nobody","orderStatusType":"Filled",'
                      '"originalQuantity":"1","remainingQuantity":"0","customerOrderId":"nobody"}}')  # fmt: skip
        await until(lambda: live.client.stats["malformed"] >= 2, what="the malformed messages")
        await live.open()
        await _filled(live)

    live = _run(tmp_path, fake, work)
    assert live.client.stats["malformed"] == 2 and live.desk.account.positions
    rejected = [detail for kind, detail in live.events if kind == "VALR_MESSAGE_REJECTED"]
    assert rejected[0]["reason"].startswith("not JSON") and rejected[0]["suppressed"] == 0
    assert len(rejected) == 1  # the second within PROBLEM_EVERY_S is counted, not recorded


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_valr") as database:
        yield database


@pytest.mark.parametrize("placed", [True, False], ids=["killed-after-valr-took-it", "killed-before-it-arrived"])
def test_nothing_is_lost_across_a_sigkill_between_intent_and_acknowledgement(
    pg_url: str, fake: FakeValr, placed: bool
) -> None:
    fake.timeout_next(delay_s=60.0, place=placed)  # the acknowledgement never comes back
    target = subprocess.Popen(  # noqa: S603 -- our own test script
        [sys.executable, "-m", "tests.integration.valr_kill_target", pg_url, fake.url, fake.ws_url],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    ledger = Ledger(pg_url)
    ledger.migrate()
    try:
        deadline = time.monotonic() + 60
        while ledger.journal_entry("k-O") is None or fake.placements_started < 1:
            assert target.poll() is None, target.communicate()
            assert time.monotonic() < deadline, "the intent never reached the ledger"
            time.sleep(0.05)
        target.send_signal(signal.SIGKILL)
        target.wait(10)
        entry = ledger.journal_entry("k-O")
        assert entry is not None and entry.status == "NEW"  # killed between intent and acknowledgement

        async def restart() -> Rig:
            live = await rig(ledger, fake.url, fake.ws_url).start()
            try:
                await live.venue.resume()
                if placed:
                    await until(lambda: "k" in live.desk.account.positions, what="the resumed fill")
                    await asyncio.sleep(0.2)  # the position's row lands
            finally:
                await live.close()
            return live

        live = asyncio.run(restart())
    finally:
        if target.poll() is None:
            target.kill()
        target.communicate()
    final = ledger.journal_entry("k-O")
    assert final is not None
    if placed:
        assert len(fake.orders_by_customer_id("k-O")) == 1 and final.status == "FILLED"
        (position,) = ledger.positions(status="OPEN").items
        assert position["key"] == "k" and position["quantity"] == pytest.approx(final.filled_quantity)
    else:
        assert not fake.orders_by_customer_id("k-O") and final.status == "FAILED"
        assert not ledger.positions().items
    assert ("ORDERS_RESUMED", {"orders": ["k-O"]}) in live.events
    ledger.close()


def test_limit_orders_rest_and_cancel_one_per_pair_and_all(tmp_path: Path, fake: FakeValr) -> None:
    async def work(live: Rig) -> Any:
        rest = live.client.rest
        for cid in ("a", "b", "c"):
            await rest.place(order_request("BTCZAR", "BUY", Decimal("0.001"), cid, Decimal("1000000"), "GTC", True))
        await until(lambda: len(fake.open_orders()) == 3, what="three resting orders")
        first = await rest.cancel("BTCZAR", "a")
        again = await rest.cancel("BTCZAR", "a")  # over already: VALR does not know it as open
        on_pair = await rest.cancel_all("BTCZAR")
        status = await rest.order("BTCZAR", "b")
        missing = await rest.order("BTCZAR", "never-sent")
        return first, again, on_pair, status, missing, await rest.cancel_all()

    first, again, on_pair, status, missing, rest_of_them = _run(tmp_path, fake, work).result
    assert first is True and again is False
    assert sorted(o["customerOrderId"] for o in on_pair) == ["b", "c"] and rest_of_them == []
    assert status["orderStatusType"] == "Cancelled" and missing is None
    assert not fake.open_orders()
