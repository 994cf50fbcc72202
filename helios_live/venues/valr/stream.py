"""The VALR WebSocket client, for the trade stream (subscribed) and the account stream (signed
headers at each handshake, no subscription): keep alive, reconnect.

VALR drops a connection that sends nothing for 30 s, so the client sends VALR's own
`{"type":"PING"}` every `ping_every_s`. A connection that delivers nothing (not even the
PONG) for `idle_timeout_s` is treated as dead. After any loss the client reconnects with
exponential backoff and full jitter, and subscribes to everything again; the handler hears
`disconnected` and `connected`, which is how the engine knows to backfill the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from helios_live.data.client import ClientStats
from helios_live.venues.valr.wire import EVENTS


class StreamHandler(Protocol):
    async def on_message(self, raw: str | bytes, received: float) -> None: ...

    async def on_connected(self) -> None: ...

    async def on_disconnected(self, reason: str) -> None: ...


def subscribe_message(subscriptions: dict[str, tuple[str, ...]]) -> str:
    for event in subscriptions:
        if event not in EVENTS:
            raise ValueError(f"unknown VALR event {event!r}; known: {EVENTS}")
    entries = [{"event": event, "pairs": list(pairs)} for event, pairs in subscriptions.items()]
    return json.dumps({"type": "SUBSCRIBE", "subscriptions": entries})


class ValrStream:
    def __init__(
        self,
        url: str,
        subscriptions: dict[str, tuple[str, ...]],
        handler: StreamHandler,
        *,
        headers: Callable[[], dict[str, str]] | None = None,
        ping_every_s: float = 20.0,
        idle_timeout_s: float = 45.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = url
        self.subscribe = subscribe_message(subscriptions) if subscriptions else None
        self.headers = headers  # signed afresh for every connection (the account stream)
        self.handler = handler
        self.ping_every_s, self.idle_timeout_s = ping_every_s, idle_timeout_s
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._sleep = sleep
        self.stats = ClientStats()
        self.last_message: float | None = None  # time.monotonic()
        self._ws: websockets.ClientConnection | None = None

    async def run(self) -> None:
        """Stay connected until cancelled."""
        failures = 0
        while True:
            try:
                extra = self.headers() if self.headers is not None else None
                connect = websockets.connect(
                    self.url, ping_interval=None, max_size=2**22, open_timeout=10, additional_headers=extra
                )
                async with connect as ws:
                    self._ws = ws
                    if self.subscribe is not None:
                        await ws.send(self.subscribe)
                    self.stats.connects += 1
                    self.stats.connected = True
                    failures = 0
                    await self.handler.on_connected()
                    await self._pump(ws)
                reason = "closed by the server"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            finally:
                self._ws = None
            self.stats.last_error = reason
            if self.stats.connected:
                self.stats.connected = False
                self.stats.disconnects += 1
                await self.handler.on_disconnected(reason)
            delay = min(self.backoff_max_s, self.backoff_s * 2**failures) * self._rng.random()
            failures = min(failures + 1, 30)
            await self._sleep(delay)

    async def _pump(self, ws: websockets.ClientConnection) -> None:
        pinger = asyncio.create_task(self._ping(ws))
        handler, stats = self.handler, self.stats
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout_s):
                    raw = await ws.recv()
                received = time.perf_counter()
                stats.messages += 1
                self.last_message = time.monotonic()
                await handler.on_message(raw, received)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def _ping(self, ws: websockets.ClientConnection) -> None:
        ping = json.dumps({"type": "PING"})
        while True:
            await asyncio.sleep(self.ping_every_s)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(ping)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
