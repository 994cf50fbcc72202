"""Hyperliquid's trades WebSocket: subscribe per coin, turn each trade into a `Quote` (kind
"last"), keep alive, reconnect.

Hyperliquid closes a connection that sends nothing for 60 s, so the client sends its
`{"method":"ping"}` every `ping_every_s`; a connection silent (not even the pong) for
`idle_timeout_s` is treated as dead. After any loss it reconnects with capped exponential backoff
(0.5 s doubling to 30 s, reset by a successful connection) and subscribes again, until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from helios_core.surveillance.observations import Quote
from helios_live.venues.sources import BadRow, Observed, Tally, epoch_ms, positive, require

VENUE = "hyperliquid"
QuoteHandler = Callable[[Quote], Awaitable[None] | None]


def subscribe_messages(coins: Sequence[str]) -> list[str]:
    return [json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": c}}) for c in coins]


def parse_trades(raw: str | bytes) -> Observed[Quote] | None:
    """One WebSocket message: the trades of a `trades` message, None for any other channel
    (subscriptionResponse, pong). A message that is not JSON or not an object is one bad row."""
    try:
        message = json.loads(raw)
    except ValueError:
        return Observed(bad=1, problems=("message is not JSON",))
    if not isinstance(message, dict):
        return Observed(bad=1, problems=("message is not an object",))
    if message.get("channel") != "trades":
        return None
    data = message.get("data")
    if not isinstance(data, list):
        return Observed(bad=1, problems=("trades data is not a list",))
    tally: Tally[Quote] = Tally()
    for trade in data:
        try:
            tally.keep(_quote(trade))
        except BadRow as exc:
            tally.reject(f"trade: {exc}")
    return tally.done()


def _quote(trade: Any) -> Quote:
    coin = require(trade, "coin")
    if not isinstance(coin, str) or not coin:
        raise BadRow("coin is not a name")
    price = positive(require(trade, "px"), "px")
    positive(require(trade, "sz"), "sz")  # a trade of no size is malformed, though only px is kept
    return Quote(VENUE, coin, price, epoch_ms(require(trade, "time"), "time"), "last")


class HyperliquidTrades:
    """The trades of `coins`, delivered to `on_quote` (sync or async) as they arrive."""

    def __init__(
        self,
        ws_url: str,
        coins: Sequence[str],
        on_quote: QuoteHandler,
        now: Callable[[], float] = time.time,
        *,
        ping_every_s: float = 50.0,
        idle_timeout_s: float = 120.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ws_url = ws_url
        self.coins = tuple(coins)
        self.on_quote = on_quote
        self.now = now  # when the last message arrived, for staleness checks by the caller
        self.ping_every_s, self.idle_timeout_s = ping_every_s, idle_timeout_s
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self._sleep = sleep
        self.connected = False
        self.connects = 0
        self.messages = 0
        self.bad = 0
        self.problems: list[str] = []
        self.last_error = ""
        self.last_message_at: float | None = None

    async def run(self) -> None:
        """Stay connected and subscribed until cancelled."""
        failures = 0
        while True:
            try:
                connect = websockets.connect(self.ws_url, ping_interval=None, max_size=2**22, open_timeout=10)
                async with connect as ws:
                    for message in subscribe_messages(self.coins):
                        await ws.send(message)
                    self.connected = True
                    self.connects += 1
                    failures = 0
                    await self._pump(ws)
                self.last_error = "closed by the server"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                self.last_error = f"{exc.__class__.__name__}: {exc}"
            finally:
                self.connected = False
            delay = min(self.backoff_max_s, self.backoff_s * 2**failures)
            failures = min(failures + 1, 30)
            await self._sleep(delay)

    async def _pump(self, ws: websockets.ClientConnection) -> None:
        pinger = asyncio.create_task(self._ping(ws))
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout_s):
                    raw = await ws.recv()
                self.messages += 1
                self.last_message_at = self.now()
                await self._handle(raw)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def _handle(self, raw: str | bytes) -> None:
        observed = parse_trades(raw)
        if observed is None:
            return
        self.bad += observed.bad
        self.problems = (self.problems + list(observed.problems))[-10:]
        for quote in observed.items:
            result = self.on_quote(quote)
            if inspect.isawaitable(result):
                await result

    async def _ping(self, ws: websockets.ClientConnection) -> None:
        ping = json.dumps({"method": "ping"})
        while True:
            await asyncio.sleep(self.ping_every_s)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(ping)
