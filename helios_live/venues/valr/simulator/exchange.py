"""A local VALR exchange: the trade WebSocket and the public REST API, replaying recorded data.

A real network peer on 127.0.0.1 for tests, the demo and benchmarks. Simulated time starts at
`start` and runs at `speed` x wall time; one merged timeline of typed events
(`helios_live.data.recorded.timeline`, the one a replay feeds the kernel) is played once, and
each event goes, in VALR's wire format, to the clients subscribed to its event and pair when it
becomes due. Like
the real exchange, a disconnected client misses what was sent meanwhile and backfills from
the REST API (`ValrRestServer`, which never serves anything after the simulated `now()`).

Every client has its own send queue and sender task, so a slow client cannot stall the
others; one whose queue grows past `max_queue` messages is disconnected with close code
1013 (try again later). Faults for resilience tests: `drop_connections()` aborts every TCP
connection without a closing handshake, `send_garbage(n)` sends malformed messages; a person
driving `helios live simulate` reaches them as `POST /sim/drop` and `POST /sim/garbage?count=N`
on the REST port (also `/sim/pause` and `/sim/resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from helios_core.errors import ConfigurationError
from helios_core.market import Book, Bucket, MarketData, TradeTick
from helios_live.data.recorded import MarketSummaries, Recorded, earliest, epoch_seconds, load_recorded, timeline
from helios_live.venues.valr.simulator.rest import Control, ValrRestServer
from helios_live.venues.valr.wire import (
    EVENT_NAMES,
    EVENTS,
    book_message,
    bucket_message,
    summary_message,
    trade_message,
)

__all__ = ["ExchangeSimulator", "load_recorded", "run_simulator"]

log = logging.getLogger(__name__)

WS_PATH = "/ws/trade"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_GARBAGE = 10_000
# Yield to the senders this often within one due instant, so a large batch flows out as it is queued.
_YIELD_EVERY = 500


def _garbage(pair: str) -> list[str | bytes]:
    trade = {"price": "1", "quantity": "1", "currencyPair": pair, "tradedAt": "2020-01-01T00:00:00.000Z"}
    return [
        b"\x8b\x00\xfe\xffnot json",
        '{"type":"NEW_TRADE","currencyPairSymbol":"' + pair + '","data":{"price":"0.0',
        json.dumps({"type": "SURPRISE", "currencyPairSymbol": pair, "data": {}}),
        json.dumps({"type": "NEW_TRADE", "currencyPairSymbol": pair, "data": trade | {"price": "-1", "id": "g1"}}),
        json.dumps({"type": "NEW_TRADE", "currencyPairSymbol": pair, "data": {"currencyPair": pair, "id": "g2"}}),
        json.dumps({"type": "NEW_TRADE", "currencyPairSymbol": "NOPEZAR", "data": trade | {"currencyPair": "NOPEZAR"}}),
        json.dumps(
            {"type": "NEW_TRADE", "currencyPairSymbol": pair, "data": trade | {"tradedAt": "2999-01-01T00:00:00.000Z"}}
        ),
    ]


def _garbage_count(query: dict[str, str]) -> int:
    text = query.get("count", "1")
    if not text.isdigit() or not 1 <= int(text) <= MAX_GARBAGE:
        raise ValueError(f"count must be an integer from 1 to {MAX_GARBAGE}, got {text!r}")
    return int(text)


def utc_from_epoch(seconds: float) -> datetime:
    """The UTC datetime of epoch `seconds`, to the microsecond."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(seconds * 1e6))


def _error(message: str) -> str:
    return json.dumps({"type": "ERROR", "message": message})


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    queue: asyncio.Queue[tuple[str | bytes, bool]] = field(default_factory=asyncio.Queue)
    subscriptions: dict[str, frozenset[str]] = field(default_factory=dict)


class _SimClock:
    """Simulated epoch seconds: `speed` x wall time since the last anchor, frozen while paused."""

    def __init__(self, start: float, speed: float) -> None:
        self.speed = speed
        # One tuple, replaced whole, so the REST thread never reads a half-updated anchor.
        self._anchor = (time.monotonic(), start, False)

    @property
    def running(self) -> bool:
        return self._anchor[2]

    def now(self) -> float:
        wall, sim, running = self._anchor
        return sim + (time.monotonic() - wall) * self.speed if running else sim

    def set_running(self, running: bool) -> None:
        self._anchor = (time.monotonic(), self.now(), running)


class ExchangeSimulator:
    """VALR's trade WebSocket (`ws_url`) and public REST API (`rest_url`) over recorded data; start once."""

    def __init__(
        self,
        data: Recorded,
        *,
        books: Mapping[str, Sequence[Book]] | None = None,
        speed: float = 60.0,
        start: datetime | None = None,
        summary_every_s: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        rest_port: int = 0,
        max_queue: int = 100_000,
    ) -> None:
        if host not in LOOPBACK:
            raise ConfigurationError(f"the exchange simulator binds to loopback only, not {host!r}")
        if not speed > 0 or not summary_every_s > 0 or max_queue < 1:
            raise ConfigurationError("speed and summary_every_s must be positive, max_queue at least 1")
        first = start or earliest(data, books)
        if first is None:
            raise ConfigurationError("nothing to replay: the recording has no candles, trades or books")
        if first.tzinfo is None:
            raise ConfigurationError("start must be timezone-aware (UTC)")
        self._start = epoch_seconds(first)
        self._timeline = timeline(data, books, start=self._start, summary_every_s=summary_every_s)
        self._summaries = MarketSummaries(data, books)
        self._books_sent: dict[str, int] = {}
        self._host, self._port, self._max_queue = host, port, max_queue
        self._clock = _SimClock(self._start, speed)
        self._paused = False
        self._resumed = asyncio.Event()
        self._clients: set[_Client] = set()
        self._refuse_until = 0.0  # simulated time before which new connections are refused
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: Server | None = None
        self._ws_port: int | None = None
        self._state = "new"  # new -> running -> stopped: a simulator is started once
        self._player: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self.sent = 0  # market-data events written to client sockets; replies and garbage do not count
        self._data, self._rest_port = data, rest_port
        self._rest: ValrRestServer | None = None

    @property
    def ws_url(self) -> str:
        if self._ws_port is None:
            raise RuntimeError("the simulator is not started")
        return f"ws://{self._host}:{self._ws_port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        if self._rest is None:
            raise RuntimeError("the simulator is not started")
        return self._rest.url

    @property
    def connections(self) -> int:
        return len(self._clients)

    def now(self) -> datetime:
        """The simulated exchange time (UTC)."""
        return utc_from_epoch(self._clock.now())

    def pause(self) -> None:
        """Freeze simulated time (allowed before `start()`); nothing becomes due until `resume()`."""
        self._paused = True
        self._resumed.clear()
        self._clock.set_running(False)

    def resume(self) -> None:
        """Let simulated time run again from where it was paused."""
        self._paused = False
        if self._player is not None:
            self._clock.set_running(True)
        self._resumed.set()

    async def _set_paused(self, paused: bool) -> None:
        if paused:
            self.pause()
        else:
            self.resume()

    async def start(self) -> ExchangeSimulator:
        """Listen on both ports and start the clock (unless paused)."""
        if self._state != "new":
            raise RuntimeError("an ExchangeSimulator is started once; make a new one")
        self._state = "running"
        loop = asyncio.get_running_loop()

        def later(work: Coroutine[Any, Any, Any], /, **body: object) -> dict[str, Any]:
            # The REST server answers on its own threads; the work belongs to this loop.
            asyncio.run_coroutine_threadsafe(work, loop)
            return {"status": "accepted", **body}

        controls: dict[str, Control] = {
            "/sim/drop": lambda _: later(self.drop_connections(), action="drop"),
            "/sim/garbage": lambda q: later(self.send_garbage(n := _garbage_count(q)), action="garbage", count=n),
            "/sim/pause": lambda _: later(self._set_paused(True), action="pause"),
            "/sim/resume": lambda _: later(self._set_paused(False), action="resume"),
        }
        self._rest = ValrRestServer(self._data, self._host, self._rest_port, now=self.now, controls=controls)
        self._server = await serve(
            self._serve,
            self._host,
            self._port,
            process_request=self._check_path,
            compression=None,  # cheaper at high replay speeds; VALR clients need not negotiate it
            # VALR keeps a connection alive on the client's PING messages, not on protocol pings: a
            # client that applies back-pressure at top replay speed must not be dropped for a pong
            # stuck behind the messages it has not read yet.
            ping_interval=None,
        )
        self._ws_port = int(self._server.sockets[0].getsockname()[1])
        self._rest.start()
        self._player = asyncio.create_task(self._play(), name="exchange-sim-player")
        if not self._paused:
            self._clock.set_running(True)
            self._resumed.set()
        return self

    async def stop(self, drain_s: float = 1.0) -> None:
        """Flush queued messages (up to `drain_s`), close every client with 1001, stop REST."""
        if self._state != "running":
            return
        self._state = "stopped"
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        queues = [asyncio.create_task(c.queue.join()) for c in self._clients]
        if queues:
            _, late = await asyncio.wait(queues, timeout=drain_s)
            for task in late:
                task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._rest is not None:
            await asyncio.to_thread(self._rest.stop)

    async def __aenter__(self) -> ExchangeSimulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def sent_out(self) -> int:
        """Wait until every message queued for a client so far is written to its socket; the
        market-data messages sent."""
        await asyncio.gather(*(client.queue.join() for client in list(self._clients)))
        return self.sent

    async def drop_connections(self, refuse_s: float = 0.0) -> int:
        """Abort every client's TCP connection with no closing handshake, and refuse new ones for
        `refuse_s` simulated seconds (an outage the clients must backfill); returns how many."""
        self._refuse_until = self._clock.now() + refuse_s
        clients = list(self._clients)
        for client in clients:
            self._clients.discard(client)
            client.ws.transport.abort()
        await asyncio.sleep(0)
        return len(clients)

    async def send_garbage(self, count: int) -> int:
        """Queue `count` malformed messages to every client; returns how many clients got them."""
        default = next(iter(self._summaries.pairs), "BTCZAR")
        for client in list(self._clients):
            subscribed = sorted(pair for pairs in client.subscriptions.values() for pair in pairs)
            mix = _garbage(subscribed[0] if subscribed else default)
            for index in range(count):
                self._enqueue(client, mix[index % len(mix)])
        await asyncio.sleep(0)
        return len(self._clients)

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._clock.now() < self._refuse_until:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "the simulated exchange is down\n")
        if urlparse(request.path).path == WS_PATH:
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, f"no WebSocket at {request.path}; use {WS_PATH}\n")

    async def _serve(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        self._clients.add(client)
        sender = self._spawn(self._send_loop(client))
        try:
            async for raw in ws:
                self._enqueue(client, self._answer(client, raw))
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            sender.cancel()

    async def _send_loop(self, client: _Client) -> None:
        while True:
            data, counted = await client.queue.get()
            try:
                await client.ws.send(data)
            except ConnectionClosed:
                return
            finally:
                client.queue.task_done()
            self.sent += counted

    def _enqueue(self, client: _Client, data: str | bytes, counted: bool = False) -> None:
        if client not in self._clients:  # dropped or being closed: nothing more for it
            return
        if client.queue.qsize() >= self._max_queue:
            # Too slow to keep up: drop it like an exchange would rather than buffer without bound.
            self._clients.discard(client)
            log.warning(
                "client %s fell %d messages behind; closing with 1013", client.ws.remote_address, self._max_queue
            )
            self._spawn(client.ws.close(1013, "client too slow"))
            return
        client.queue.put_nowait((data, counted))

    def _answer(self, client: _Client, raw: str | bytes) -> str:
        if isinstance(raw, bytes):
            return _error("binary frames are not supported")
        try:
            request = json.loads(raw)
        except ValueError:
            return _error("message is not JSON")
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "PING":
            return json.dumps({"type": "PONG"})
        if kind == "SUBSCRIBE":
            return self._subscribe(client, request.get("subscriptions"))
        return _error(f"unknown message type {kind!r}; expected SUBSCRIBE or PING")

    def _subscribe(self, client: _Client, subscriptions: object) -> str:
        if not isinstance(subscriptions, list):
            return _error("subscriptions must be a list")
        changes: dict[str, frozenset[str]] = {}
        for entry in subscriptions:
            event = entry.get("event") if isinstance(entry, dict) else None
            pairs = entry.get("pairs") if isinstance(entry, dict) else None
            if event not in EVENTS:
                return _error(f"unknown event {event!r}; expected one of {list(EVENTS)}")
            if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
                return _error(f"pairs of {event} must be a list of pair symbols")
            changes[event] = frozenset(pairs)
        client.subscriptions |= changes
        return json.dumps({"type": "SUBSCRIBED", "subscriptions": subscriptions})

    def _broadcast(self, event: MarketData) -> None:
        kind = EVENT_NAMES[type(event)]
        clients = [c for c in self._clients if event.pair in c.subscriptions.get(kind, ())]
        if not clients:
            return
        message = self._encode(event)
        for client in clients:
            self._enqueue(client, message, counted=True)

    def _encode(self, event: MarketData) -> str:
        if isinstance(event, TradeTick):
            return trade_message(event)
        if isinstance(event, Bucket):
            return bucket_message(event)
        if isinstance(event, Book):
            sequence = self._books_sent[event.pair] = self._books_sent.get(event.pair, 0) + 1
            return book_message(event, sequence)
        figures = self._summaries.figures(event.pair, event.ts)
        assert figures is not None  # noqa: S101 -- the timeline only holds summaries of priced pairs
        return summary_message(event, figures)

    async def _play(self) -> None:
        timeline, position = self._timeline, 0
        while position < len(timeline):
            await self._until(timeline[position].at)
            now, done = self._clock.now(), 0
            while position < len(timeline) and timeline[position].at <= now:
                self._broadcast(timeline[position].event)
                position, done = position + 1, done + 1
                if done % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        self.finished.set()

    async def _until(self, at: float) -> None:
        while True:
            if not self._clock.running:
                await self._resumed.wait()
                continue
            delay = (at - self._clock.now()) / self._clock.speed
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def run_simulator(
    data: Recorded,
    *,
    speed: float = 60.0,
    host: str = "127.0.0.1",
    port: int = 0,
    rest_port: int = 0,
    books: Mapping[str, Sequence[Book]] | None = None,
    start: datetime | None = None,
    summary_every_s: float = 10.0,
    on_ready: Callable[[ExchangeSimulator], None] | None = None,
) -> None:
    """Serve the recording until its timeline is played out or the task is cancelled."""
    simulator = ExchangeSimulator(
        data,
        books=books,
        speed=speed,
        start=start,
        summary_every_s=summary_every_s,
        host=host,
        port=port,
        rest_port=rest_port,
    )
    async with simulator:
        if on_ready is not None:
            on_ready(simulator)
        await simulator.finished.wait()
