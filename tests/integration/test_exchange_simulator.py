"""The VALR exchange simulator as a real peer: WebSocket and REST on loopback, replaying sample data."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import pandas as pd
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from helios_core.errors import SourceError
from helios_core.market import Book
from helios_live.data.recorded import MarketSummaries, Recorded, books_from_binance_depth, epoch_seconds
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator, load_recorded, run_simulator
from helios_live.venues.valr.wire import summary_data
from tests.conftest import SAMPLE, shared_data

pytestmark = pytest.mark.integration

SPEED = 1800.0  # 30 simulated minutes in about a second
DECIMAL = re.compile(r"^\d+(\.\d+)?$")
MS_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EVENTS = ("NEW_TRADE", "NEW_TRADE_BUCKET", "MARKET_SUMMARY_UPDATE", "AGGREGATED_ORDERBOOK_UPDATE")


@pytest.fixture(scope="module")
def xrp() -> Recorded:
    """The first 30 minutes of the XRP-ETH recording: its trades and its 1m candles."""
    recorded = load_recorded(SAMPLE, ["XRP-ETH"])
    end = pd.Timestamp("2019-10-11T00:30:00Z")
    return Recorded(
        candles={"XRPETH": recorded.candles["XRPETH"].loc[lambda f: f["ts"] < end]},
        trades={"XRPETH": recorded.trades["XRPETH"].loc[lambda f: f["ts"] < end]},
    )


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=15))


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def until(sim: ExchangeSimulator, when: datetime) -> None:
    """Wait until simulated time has passed `when`."""
    await asyncio.sleep(max((when - sim.now()).total_seconds(), 0) / SPEED + 0.02)
    assert sim.now() > when


async def subscribe(ws: ClientConnection, **events: list[str]) -> None:
    subscriptions = [{"event": event, "pairs": pairs} for event, pairs in events.items()]
    await ws.send(json.dumps({"type": "SUBSCRIBE", "subscriptions": subscriptions}))
    assert json.loads(await ws.recv()) == {"type": "SUBSCRIBED", "subscriptions": subscriptions}


async def read_all(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    async for raw in ws:
        into.append(json.loads(raw))


def trades_of(messages: list[dict[str, Any]]) -> list[str]:
    return [m["data"]["id"] for m in messages if m["type"] == "NEW_TRADE"]


def is_valid_event(raw: str | bytes, pairs: set[str]) -> bool:
    """What a careful client would accept as a market-data event."""
    try:
        message = json.loads(raw)
        if message["type"] not in EVENTS or message["currencyPairSymbol"] not in pairs:
            return False
        data = message["data"]
        if message["type"] == "NEW_TRADE":
            positive = Decimal(data["price"]) > 0 and Decimal(data["quantity"]) > 0
            return positive and stamp(data["tradedAt"]) < datetime(2100, 1, 1, tzinfo=UTC)
        return True
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return False


def test_subscribe_ping_and_bad_messages_keep_the_connection(xrp: Recorded) -> None:
    async def scenario() -> None:
        async with ExchangeSimulator(xrp) as sim, websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, NEW_TRADE=["XRPETH"], MARKET_SUMMARY_UPDATE=[])
            bad: list[str | bytes] = [
                "not json",
                b"\x00\x01",
                "[1, 2]",
                '{"type": "HELLO"}',
                '{"type": "SUBSCRIBE", "subscriptions": [{"event": "NEW_THING", "pairs": ["XRPETH"]}]}',
                '{"type": "SUBSCRIBE", "subscriptions": [{"event": "NEW_TRADE", "pairs": "XRPETH"}]}',
            ]
            for raw in bad:
                await ws.send(raw)
                answer = json.loads(await ws.recv())
                while answer["type"] == "NEW_TRADE":  # the replay is running meanwhile
                    answer = json.loads(await ws.recv())
                assert answer["type"] == "ERROR" and answer["message"]
            await ws.send(json.dumps({"type": "PING"}))
            answer = json.loads(await ws.recv())
            while answer["type"] == "NEW_TRADE":
                answer = json.loads(await ws.recv())
            assert answer == {"type": "PONG"}
            assert sim.connections == 1
            with pytest.raises(InvalidStatus, match="404"):
                await websockets.connect(sim.ws_url.replace("/ws/trade", "/ws/account"))

    run(scenario)


def test_replay_delivers_every_trade_once_in_order_buckets_after_close_and_summaries(xrp: Recorded) -> None:
    messages: list[dict[str, Any]] = []

    async def scenario() -> None:
        sim = ExchangeSimulator(xrp, speed=SPEED)
        sim.pause()  # subscribe before the first event is due
        async with sim, websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, NEW_TRADE=["XRPETH"], NEW_TRADE_BUCKET=["XRPETH"], MARKET_SUMMARY_UPDATE=["XRPETH"])
            sim.resume()
            reader = asyncio.create_task(read_all(ws, messages))
            await sim.finished.wait()
            await sim.stop()
            await reader
            assert ws.close_code == 1001  # a clean close after the queue was flushed
            assert sim.sent == len(messages)

    run(scenario)
    trades = xrp.trades["XRPETH"]
    received = [m["data"] for m in messages if m["type"] == "NEW_TRADE"]
    assert [t["id"] for t in received] == list(trades["trade_id"])
    assert [Decimal(t["price"]) for t in received] == [Decimal(repr(p)) for p in trades["price"]]
    assert [t["takerSide"] for t in received] == list(trades["side"].str.lower())
    for trade in received:
        assert set(trade) == {"price", "quantity", "currencyPair", "tradedAt", "takerSide", "id"}
        assert DECIMAL.match(trade["price"]) and DECIMAL.match(trade["quantity"]) and MS_STAMP.match(trade["tradedAt"])

    buckets = [(i, m["data"]) for i, m in enumerate(messages) if m["type"] == "NEW_TRADE_BUCKET"]
    assert [stamp(b["startTime"]) for _, b in buckets] == list(xrp.candles["XRPETH"]["ts"])
    for index, bucket in buckets:
        closes = stamp(bucket["startTime"]) + timedelta(seconds=60)
        assert bucket["bucketPeriodInSeconds"] == 60 and DECIMAL.match(bucket["close"])
        earlier = [stamp(m["data"]["tradedAt"]) for m in messages[:index] if m["type"] == "NEW_TRADE"]
        later = [stamp(m["data"]["tradedAt"]) for m in messages[index:] if m["type"] == "NEW_TRADE"]
        assert all(t >= closes for t in later) and sum(t < closes for t in earlier) == (trades["ts"] < closes).sum()

    summaries = [(i, m["data"]) for i, m in enumerate(messages) if m["type"] == "MARKET_SUMMARY_UPDATE"]
    created = [stamp(s["created"]) for _, s in summaries]
    assert len(created) > 100 and all((b - a).total_seconds() == 10 for a, b in zip(created, created[1:], strict=False))
    for index, summary in summaries:
        last_trade = [m for m in messages[:index] if m["type"] == "NEW_TRADE"][-1]["data"]
        assert summary["lastTradedPrice"] == last_trade["price"] and "bidPrice" not in summary


def test_only_subscribed_pairs_and_events_arrive_and_an_empty_list_unsubscribes(xrp: Recorded) -> None:
    btc = load_recorded(SAMPLE, ["BTC-PERP"]).candles["BTCPERP"].head(30)
    shifted = btc.assign(ts=btc["ts"] - (btc["ts"].iloc[0] - pd.Timestamp("2019-10-11T00:00:00Z")))
    data = Recorded(candles={**xrp.candles, "BTCPERP": shifted}, trades=xrp.trades)
    messages: list[dict[str, Any]] = []

    async def scenario() -> None:
        sim = ExchangeSimulator(data, speed=SPEED)
        sim.pause()
        async with sim, websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, NEW_TRADE=["XRPETH"], NEW_TRADE_BUCKET=["BTCPERP"])
            sim.resume()
            while len(trades_of(messages)) < 10:
                messages.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "SUBSCRIBE", "subscriptions": [{"event": "NEW_TRADE", "pairs": []}]}))
            reader = asyncio.create_task(read_all(ws, messages))
            await sim.finished.wait()
            await sim.stop()
            await reader

    run(scenario)
    kinds = {(m["type"], m.get("currencyPairSymbol")) for m in messages}
    assert kinds == {("NEW_TRADE", "XRPETH"), ("NEW_TRADE_BUCKET", "BTCPERP"), ("SUBSCRIBED", None)}
    cut = next(i for i, m in enumerate(messages) if m["type"] == "SUBSCRIBED")
    assert trades_of(messages[cut:]) == [] and 10 <= len(trades_of(messages)) < len(xrp.trades["XRPETH"])
    assert len([m for m in messages if m["type"] == "NEW_TRADE_BUCKET"]) == 30  # kept after the trades stopped


def test_a_dropped_client_misses_events_and_backfills_them_over_rest(xrp: Recorded) -> None:
    trades = xrp.trades["XRPETH"].reset_index(drop=True)
    order = {trade_id: i for i, trade_id in enumerate(trades["trade_id"])}
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    backfill: list[dict[str, Any]] = []

    async def scenario() -> None:
        sim = ExchangeSimulator(xrp, speed=SPEED)
        sim.pause()
        async with sim, httpx.AsyncClient(base_url=sim.rest_url) as http:
            async with websockets.connect(sim.ws_url) as ws:
                await subscribe(ws, NEW_TRADE=["XRPETH"])
                sim.resume()
                while len(trades_of(before)) < 20:
                    before.append(json.loads(await ws.recv()))
                assert await sim.drop_connections() == 1
                with pytest.raises(ConnectionClosedError) as lost:
                    await read_all(ws, before)
                assert lost.value.rcvd is None  # no closing handshake: the connection was lost
            last_seen = order[trades_of(before)[-1]]
            await until(sim, trades["ts"].iloc[last_seen + 5])  # trades pass while nobody is connected
            async with websockets.connect(sim.ws_url) as ws:
                await subscribe(ws, NEW_TRADE=["XRPETH"])
                reader = asyncio.create_task(read_all(ws, after))
                await sim.finished.wait()
                first_again = stamp(next(m for m in after if m["type"] == "NEW_TRADE")["data"]["tradedAt"])
                start = int(trades["ts"].iloc[last_seen].timestamp())
                end = int(first_again.timestamp()) + 1
                answer = await http.get(f"/v1/public/XRPETH/trades?startTime={start}&endTime={end}&limit=100")
                backfill.extend(answer.json())
                await sim.stop()
                await reader

    run(scenario)
    seen_before, seen_after = trades_of(before), trades_of(after)
    assert max(order[t] for t in seen_before) < min(order[t] for t in seen_after)
    missed = set(order) - set(seen_before) - set(seen_after)
    assert len(missed) >= 5 and missed <= {t["id"] for t in backfill}
    assert len(seen_before) + len(missed) + len(seen_after) == len(order)  # each trade exactly once


def test_rest_serves_nothing_after_the_simulated_now(xrp: Recorded) -> None:
    trades, candles = xrp.trades["XRPETH"], xrp.candles["XRPETH"]

    async def scenario() -> None:
        sim = ExchangeSimulator(xrp, speed=SPEED)
        async with sim, httpx.AsyncClient(base_url=sim.rest_url) as http:
            await until(sim, datetime(2019, 10, 11, 0, 12, tzinfo=UTC))
            sim.pause()
            now = pd.Timestamp(sim.now())
            span = "startTime=1570752000&endTime=1570753800"  # the whole 30 minutes
            served = (await http.get(f"/v1/public/XRPETH/trades?{span}&limit=100")).json()
            buckets = (await http.get(f"/v1/public/XRPETH/buckets?{span}&periodSeconds=60")).json()
        assert len(served) == (trades["ts"] <= now).sum() > 0
        assert all(pd.Timestamp(t["tradedAt"]) <= now for t in served)
        assert len(buckets) == (candles["ts"] + pd.Timedelta(seconds=60) <= now).sum() > 0
        assert all(pd.Timestamp(b["startTime"]) + pd.Timedelta(seconds=60) <= now for b in buckets)

    run(scenario)


def test_send_garbage_delivers_count_messages_that_are_not_valid_events(xrp: Recorded) -> None:
    async def scenario() -> None:
        sim = ExchangeSimulator(xrp)
        sim.pause()  # nothing but the garbage arrives
        async with sim, websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, NEW_TRADE=["XRPETH"])
            assert await sim.send_garbage(14) == 1
            received = [await ws.recv() for _ in range(14)]
            assert not any(is_valid_event(raw, {"XRPETH"}) for raw in received)
            assert any(isinstance(raw, bytes) for raw in received)
            await ws.send(json.dumps({"type": "PING"}))
            assert json.loads(await ws.recv()) == {"type": "PONG"}  # nothing else was queued
            assert sim.sent == 0

    run(scenario)


def test_a_client_too_slow_to_keep_up_is_closed_with_1013(xrp: Recorded) -> None:
    async def scenario() -> None:
        sim = ExchangeSimulator(xrp, max_queue=5)
        sim.pause()
        async with sim, websockets.connect(sim.ws_url) as ws:
            await sim.send_garbage(50)  # queued in one go, faster than any socket drains
            with pytest.raises(ConnectionClosedError):
                while True:
                    await ws.recv()
            assert ws.close_code == 1013

    run(scenario)


def test_http_control_routes_inject_faults(xrp: Recorded) -> None:
    async def scenario() -> None:
        sim = ExchangeSimulator(xrp)
        sim.pause()
        async with sim, httpx.AsyncClient(base_url=sim.rest_url) as http, websockets.connect(sim.ws_url) as ws:
            answer = await http.post("/sim/garbage?count=3")
            assert answer.status_code == 202 and answer.json()["count"] == 3
            assert len([await ws.recv() for _ in range(3)]) == 3
            assert (await http.post("/sim/garbage?count=lots")).status_code == 400
            assert (await http.post("/sim/garbage?count=0")).status_code == 400
            assert (await http.post("/sim/teleport")).status_code == 404
            assert (await http.post("/sim/resume")).status_code == 202
            answer = await http.post("/sim/drop")
            assert answer.status_code == 202 and answer.json()["action"] == "drop"
            with pytest.raises(ConnectionClosedError):
                while True:
                    await ws.recv()
            assert sim.now() > datetime(2019, 10, 11, tzinfo=UTC)  # resumed

    run(scenario)


def test_binance_depth_rebuilds_a_book_that_the_simulator_streams() -> None:
    snapshot = shared_data("orderbook/BTCUSDT_depth_snapshot_2022-11-01.csv")
    updates = shared_data("orderbook/BTCUSDT_depth_updates_2022-11-01.csv")
    books = books_from_binance_depth(snapshot, updates, "BTCUSDT", every_s=1.0)
    assert books
    for book in books:
        assert book.bids[0][0] < book.asks[0][0] and 0 < len(book.bids) <= 40 and 0 < len(book.asks) <= 40
        assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
        assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)

    async def scenario() -> dict[str, Any]:
        sim = ExchangeSimulator(Recorded(), books={"BTCUSDT": books}, speed=SPEED)
        sim.pause()
        async with sim, websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, AGGREGATED_ORDERBOOK_UPDATE=["BTCUSDT"])
            sim.resume()
            message: dict[str, Any] = json.loads(await ws.recv())
            return message

    message = asyncio.run(asyncio.wait_for(scenario(), timeout=15))
    assert message["type"] == "AGGREGATED_ORDERBOOK_UPDATE" and message["currencyPairSymbol"] == "BTCUSDT"
    data = message["data"]
    assert Decimal(data["Bids"][0]["price"]) < Decimal(data["Asks"][0]["price"])
    assert data["Bids"][0]["side"] == "buy" and data["Asks"][0]["side"] == "sell"
    assert data["Asks"][0]["currencyPair"] == "BTCUSDT" and MS_STAMP.match(data["LastChange"])
    assert data["SequenceNumber"] == 1


def test_summaries_take_bid_and_ask_from_the_latest_book_and_never_invent_prices(xrp: Recorded) -> None:
    first = xrp.trades["XRPETH"]["ts"].iloc[0]
    at = epoch_seconds(first)
    book = Book("XRPETH", at + 30, bids=((0.0014, 10.0),), asks=((0.00142, 5.0),))
    summaries = MarketSummaries(xrp, {"XRPETH": [book]})

    def data(when: float) -> dict[str, Any] | None:
        summary, figures = summaries.summary("XRPETH", when), summaries.figures("XRPETH", when)
        return None if summary is None or figures is None else summary_data(summary, figures)

    assert data(at - 1) is None
    early = data(at)
    later = data(at + 31)
    assert early is not None and "bidPrice" not in early and "previousClosePrice" not in early
    assert later is not None and (later["bidPrice"], later["askPrice"]) == ("0.0014", "0.00142")
    assert later["created"] == (first + pd.Timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_load_recorded_reads_1m_candles_and_trades_by_normalised_pair() -> None:
    everything = load_recorded(SAMPLE)
    assert set(everything.candles) == {"XRPETH", "BTCPERP"}  # the other pairs have only 5m candles
    assert set(everything.trades) == {"XRPETH"}
    assert list(everything.trades["XRPETH"].columns) == ["ts", "trade_id", "side", "price", "quantity"]
    assert set(load_recorded(SAMPLE, ["XRP/ETH"]).candles) == {"XRPETH"}
    with pytest.raises(SourceError, match=r"\['ETHBTC', 'NOPEZAR'\]"):
        load_recorded(SAMPLE, ["ETH-BTC", "NOPEZAR"])


def test_run_simulator_serves_until_the_timeline_is_played(xrp: Recorded) -> None:
    ready: list[ExchangeSimulator] = []
    short = Recorded(candles={"XRPETH": xrp.candles["XRPETH"].head(3)})
    run(lambda: run_simulator(short, speed=6000.0, host="127.0.0.1", port=0, rest_port=0, on_ready=ready.append))
    assert len(ready) == 1 and ready[0].finished.is_set() and ready[0].ws_url.endswith("/ws/trade")
