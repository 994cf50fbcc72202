"""Every surveillance source against one loopback server speaking the venues' formats."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from helios_core.surveillance.observations import Quote
from helios_live.venues.hyperliquid.info import HyperliquidInfo
from helios_live.venues.hyperliquid.simulator import FakeMarkets
from helios_live.venues.hyperliquid.stream import HyperliquidTrades
from helios_live.venues.reference import BinanceTicker, CoinbaseTicker, ValrTicker
from helios_live.venues.sources import SourceError

T0 = 1_767_323_045.0
USER, VAULT = "0x" + "a" * 40, "0x" + "c" * 40
HASH = "0x" + "ab" * 32
R = TypeVar("R")


@pytest.fixture
def fake() -> Iterator[FakeMarkets]:
    with FakeMarkets() as server:
        server.set_time(T0)
        for kind, price in (("hyperliquid-oracle", 100.0), ("hyperliquid-mark", 100.2), ("hyperliquid-mid", 100.1)):
            server.set_price(kind, "BTC", price)
        server.set_price("hyperliquid-mark", "ETH", 50.0)
        server.set_price("binance", "BTC", 100.0)
        server.set_price("coinbase", "BTC", 101.0)
        server.set_price("valr", "BTCZAR", 1_800_000.0)
        yield server


def run(work: Callable[[], Awaitable[R]]) -> R:
    async def go() -> R:
        return await work()

    return asyncio.run(go())


def test_hyperliquid_info_answers(fake: FakeMarkets) -> None:
    fake.add_fill(USER, "ETH", 2500.0, 2.0, "A", liquidation=True, hash=HASH, ts=T0 - 10)
    fake.add_fill(USER, "ETH", 2400.0, 1.0, "B", ts=T0 - 5)
    fake.set_vault(VAULT, [(T0 - 60, 1000.0), (T0, 1010.0)], [(T0 - 60, 0.0), (T0, 10.0)])

    async def work() -> tuple[Any, ...]:
        async with HyperliquidInfo(f"{fake.url}/hyperliquid", now=lambda: 42.0) as info:
            return (
                await info.asset_contexts(), await info.all_mids(), await info.liquidations(USER),
                await info.liquidations(USER, since_s=T0 - 1), await info.vault(VAULT), await info.vault("0xdead"),
            )  # fmt: skip

    ctxs, mids, liqs, recent, vault, unknown = run(work)
    assert [(c.asset, c.oracle, c.mark, c.mid, c.ts) for c in ctxs.items] == [
        ("BTC", 100.0, 100.2, 100.1, 42.0),
        ("ETH", 50.0, 50.0, None, 42.0),
    ]
    assert [(q.asset, q.price) for q in mids.items] == [("BTC", 100.1)] and mids.bad == 0
    (liq,) = liqs.items
    assert (liq.side, liq.price, liq.size, liq.ts, liq.tx_hash) == ("long", 2500.0, 2.0, T0 - 10, HASH)
    assert recent.items == ()
    assert vault.items[0].equity == 1010.0 and vault.items[0].pnl == 10.0
    assert unknown.bad == 1
    assert fake.requests["hyperliquid"] == 6


def test_reference_tickers_answer_and_unknown_assets_are_bad(fake: FakeMarkets) -> None:
    async def work() -> tuple[Any, ...]:
        async with (
            BinanceTicker(f"{fake.url}/binance", now=lambda: 7.0) as binance,
            CoinbaseTicker(f"{fake.url}/coinbase") as coinbase,
            ValrTicker(f"{fake.url}/valr") as valr,
        ):
            return (
                await binance.quotes(["BTC", "NOPE"]),
                await coinbase.quotes(["BTC", "NOPE"]),
                await valr.quotes(["BTCZAR", "NOPEZAR"]),
            )

    binance, coinbase, valr = run(work)
    assert binance.items == (Quote("binance", "BTC", 100.0, 7.0, "mid"),)
    assert coinbase.items == (Quote("coinbase", "BTC", 101.0, T0, "last"),)
    assert valr.items == (Quote("valr", "BTCZAR", 1_800_000.0, T0, "last"),)
    for observed in (binance, coinbase, valr):
        assert observed.bad == 1
    assert "Invalid symbol" in binance.problems[0]


@pytest.mark.parametrize("status", [500, 429])
def test_server_errors_and_malformed_bodies_are_source_errors(fake: FakeMarkets, status: int) -> None:
    fake.fail_next("hyperliquid", status)
    fake.fail_next("coinbase", status)
    fake.malformed_next("binance", "<html>oops</html>")
    fake.malformed_next("valr", "[1, 2, 3")
    fake.malformed_next("hyperliquid", '{"universe": []}')

    async def work() -> list[str]:
        info = HyperliquidInfo(f"{fake.url}/hyperliquid")
        calls: list[Callable[[], Awaitable[object]]] = [
            info.all_mids, info.asset_contexts,
            lambda: CoinbaseTicker(f"{fake.url}/coinbase").quotes(["BTC"]),
            lambda: BinanceTicker(f"{fake.url}/binance").quotes(["BTC"]),
            lambda: ValrTicker(f"{fake.url}/valr").quotes(["BTCZAR"]),
        ]  # fmt: skip
        errors = []
        for call in calls:
            with pytest.raises(SourceError) as caught:
                await call()
            errors.append(str(caught.value))
        ok = await info.all_mids()  # the faults were served once
        assert ok.items
        await info.aclose()
        return errors

    errors = run(work)
    assert f"HTTP {status}" in errors[0] and "not JSON" in errors[3]


def test_an_unreachable_source_is_a_source_error() -> None:
    with FakeMarkets() as server:
        url = server.url
    with pytest.raises(SourceError):
        run(lambda: BinanceTicker(f"{url}/binance", timeout_s=1.0).quotes(["BTC"]))


def test_a_frozen_venue_keeps_serving_the_old_timestamp(fake: FakeMarkets) -> None:
    fake.freeze("coinbase")
    fake.set_time(T0 + 600)
    fake.set_price("coinbase", "BTC", 120.0)
    stale = run(lambda: CoinbaseTicker(f"{fake.url}/coinbase").quotes(["BTC"]))
    assert stale.items == (Quote("coinbase", "BTC", 101.0, T0, "last"),)
    fake.thaw("coinbase")
    fresh = run(lambda: CoinbaseTicker(f"{fake.url}/coinbase").quotes(["BTC"]))
    assert fresh.items == (Quote("coinbase", "BTC", 120.0, T0 + 600, "last"),)


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_the_trades_stream_survives_bad_messages_and_reconnects(fake: FakeMarkets) -> None:
    quotes: list[Quote] = []
    delays: list[float] = []

    async def fast_sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.05)

    async def work() -> HyperliquidTrades:
        stream = HyperliquidTrades(fake.ws_url, ["BTC"], quotes.append, sleep=fast_sleep)
        task = asyncio.create_task(stream.run())
        try:
            await _until(lambda: fake.subscribers("BTC") == 1)
            await asyncio.to_thread(fake.trade, "BTC", 100.5, 0.1, "B", ts=T0)
            await asyncio.to_thread(fake.trade, "ETH", 50.0, 1.0)  # not subscribed: never sent
            await asyncio.to_thread(fake.send_raw, "{not json")
            await _until(lambda: stream.bad == 1 and len(quotes) == 1)
            assert await asyncio.to_thread(fake.drop_streams) == 1
            await _until(lambda: stream.connects == 2 and fake.subscribers("BTC") == 1)
            await asyncio.to_thread(fake.trade, "BTC", 101.0, 0.2, "A", ts=T0 + 1)
            await _until(lambda: len(quotes) == 2)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return stream

    stream = run(work)
    assert quotes == [
        Quote("hyperliquid", "BTC", 100.5, T0, "last"),
        Quote("hyperliquid", "BTC", 101.0, T0 + 1, "last"),
    ]
    assert stream.messages >= 4 and not stream.connected and delays[0] == 0.5


def test_the_stream_backs_off_while_the_server_is_away() -> None:
    with FakeMarkets() as server:
        url = server.ws_url
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 8:
            raise asyncio.CancelledError

    async def work() -> None:
        with pytest.raises(asyncio.CancelledError):
            await HyperliquidTrades(url, ["BTC"], lambda q: None, sleep=record).run()

    run(work)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
