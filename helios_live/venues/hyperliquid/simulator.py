"""One loopback server that speaks the surveillance sources' formats, for tests and the demo:
Hyperliquid's info endpoint and trades WebSocket, Binance's bookTicker, Coinbase Exchange's
product ticker and VALR's market summary, each under its own path prefix.

It runs in a thread of its own (uvicorn on its own event loop), like the fake VALR server; the
control methods are safe from any thread. It misbehaves on command: a status for the next
requests under a prefix, a raw body served once, a frozen venue (the last answer, timestamp and
all, served again: a stale reference), dropped streams and raw stream messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from helios_live.venues.loopback import LoopbackServer

PRICE_KINDS = ("hyperliquid-oracle", "hyperliquid-mark", "hyperliquid-mid", "binance", "coinbase", "valr")
PREFIXES = ("hyperliquid", "binance", "coinbase", "valr")


class FakeMarkets(LoopbackServer):
    name = "fake markets server"
    ws_path = "/hyperliquid/ws"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._fixed: float | None = None
        self._lock = threading.RLock()
        self._prices: dict[tuple[str, str], float] = {}
        self._funding: dict[str, tuple[float, float]] = {}
        self._fills: dict[str, list[dict[str, Any]]] = {}
        self._vaults: dict[str, dict[str, Any]] = {}
        self._statuses: dict[str, list[int]] = {}
        self._raw: dict[str, list[str]] = {}
        self._frozen: dict[str, tuple[float, dict[tuple[str, str], float]]] = {}
        self.requests: Counter[str] = Counter()
        self._subscribers: dict[WebSocket, set[str]] = {}
        self._tid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = self.ws_url = ""

    # serving ---------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        routes = [
            Route("/hyperliquid/info", self._info, methods=["POST"]),
            WebSocketRoute("/hyperliquid/ws", self._stream),
            Route("/binance/api/v3/ticker/bookTicker", self._binance, methods=["GET"]),
            Route("/coinbase/products/{product}/ticker", self._coinbase, methods=["GET"]),
            Route("/valr/v1/public/{pair}/marketsummary", self._valr, methods=["GET"]),
        ]
        return Starlette(routes=routes)

    # control, from any thread ------------------------------------------------------------------
    def set_price(self, kind: str, asset: str, price: float) -> None:
        """`kind` is one of PRICE_KINDS; a Hyperliquid asset is listed once it has a mark."""
        if kind not in PRICE_KINDS:
            raise ValueError(f"unknown price kind {kind!r}; known: {PRICE_KINDS}")
        with self._lock:
            self._prices[(kind, asset)] = price

    def set_funding(self, asset: str, funding: float, open_interest: float) -> None:
        with self._lock:
            self._funding[asset] = (funding, open_interest)

    def set_time(self, ts: float | None) -> None:
        """The server's clock for the timestamps it writes; None returns to the given clock."""
        with self._lock:
            self._fixed = ts

    def now(self) -> float:
        with self._lock:
            return self._fixed if self._fixed is not None else self._clock()

    def add_fill(
        self, user: str, coin: str, px: float, sz: float, side: str, liquidation: bool = False,
        hash: str = "0x" + "0" * 64, *, ts: float | None = None, liquidated_user: str | None = None,
        direction: str | None = None,
    ) -> None:  # fmt: skip
        """A fill of `user` ("B" buy, "A" sell); with `liquidation` it carries Hyperliquid's
        `liquidation` object (`liquidatedUser` defaults to `user`)."""
        with self._lock:
            self._tid += 1
            closing = "Long" if side == "A" else "Short"
            fill: dict[str, Any] = {
                "coin": coin, "px": _text(px), "sz": _text(sz), "side": side,
                "time": int((ts if ts is not None else self.now()) * 1000), "startPosition": "0",
                "dir": direction or f"Close {closing}", "closedPnl": "0.0", "hash": hash, "oid": self._tid,
                "crossed": True, "fee": "0.0", "tid": self._tid, "feeToken": "USDC",
            }  # fmt: skip
            if liquidation:
                detail = {"liquidatedUser": liquidated_user or user, "markPx": px, "method": "market"}
                fill["liquidation"] = detail  # markPx is a JSON number here
            self._fills.setdefault(user.lower(), []).insert(0, fill)  # newest first, as Hyperliquid

    def set_vault(
        self, address: str, equity_points: list[tuple[float, float]], pnl_points: list[tuple[float, float]]
    ) -> None:
        """`(ts seconds, value)` points, served in every portfolio window."""
        window = {
            "accountValueHistory": [[int(t * 1000), _text(v)] for t, v in equity_points],
            "pnlHistory": [[int(t * 1000), _text(v)] for t, v in pnl_points],
            "vlm": "0.0",
        }
        with self._lock:
            self._vaults[address.lower()] = {
                "name": "Fake vault", "vaultAddress": address, "leader": "0x" + "1" * 40, "description": "",
                "portfolio": [[period, window] for period in ("day", "week", "month", "allTime")],
                "apr": 0.0, "followers": [], "maxDistributable": 0.0, "maxWithdrawable": 0.0,
                "isClosed": False, "allowDeposits": True,
            }  # fmt: skip

    def fail_next(self, prefix: str, status: int, count: int = 1) -> None:
        with self._lock:
            self._statuses.setdefault(_prefix(prefix), []).extend([status] * count)

    def malformed_next(self, prefix: str, body: str) -> None:
        with self._lock:
            self._raw.setdefault(_prefix(prefix), []).append(body)

    def freeze(self, venue: str) -> None:
        """Serve `venue`'s current prices and timestamp from now on, whatever changes."""
        with self._lock:
            self._frozen[_prefix(venue)] = (self.now(), dict(self._prices))

    def thaw(self, venue: str) -> None:
        with self._lock:
            self._frozen.pop(_prefix(venue), None)

    def trade(self, coin: str, px: float, sz: float, side: str = "B", *, ts: float | None = None) -> int:
        """Push one trade to every subscriber of `coin`; returns how many were sent it."""
        with self._lock:
            self._tid += 1
            trade = {
                "coin": coin, "side": side, "px": _text(px), "sz": _text(sz),
                "time": int((ts if ts is not None else self.now()) * 1000),
                "hash": f"0x{self._tid:064x}", "tid": self._tid, "users": ["0x" + "a" * 40, "0x" + "b" * 40],
            }  # fmt: skip
        message = json.dumps({"channel": "trades", "data": [trade]})
        return int(self._call(self._broadcast(message, coin)))

    def send_raw(self, text: str) -> int:
        return int(self._call(self._broadcast(text, None)))

    def drop_streams(self) -> int:
        return int(self._call(self._drop()))

    def subscribers(self, coin: str) -> int:
        with self._lock:
            return sum(coin in coins for coins in self._subscribers.values())

    # routes ------------------------------------------------------------------------------------
    def _fault(self, prefix: str) -> Response | None:
        with self._lock:
            self.requests[prefix] += 1
            statuses, raw = self._statuses.get(prefix), self._raw.get(prefix)
            if statuses:
                status = statuses.pop(0)
                return JSONResponse({"message": f"injected {status}"}, status_code=status)
            if raw:
                return Response(raw.pop(0), media_type="application/json")
        return None

    def _view(self, prefix: str) -> tuple[float, dict[tuple[str, str], float]]:
        with self._lock:
            return self._frozen.get(prefix) or (self.now(), dict(self._prices))

    async def _info(self, request: Request) -> Response:
        fault = self._fault("hyperliquid")
        if fault is not None:
            return fault
        try:
            body = json.loads(await request.body())
            kind = body["type"]
        except (ValueError, KeyError, TypeError):
            return Response("Failed to deserialize the JSON body into the target type", status_code=422)
        if kind == "metaAndAssetCtxs":
            return JSONResponse(self._contexts())
        if kind == "allMids":
            _, prices = self._view("hyperliquid")
            mids = {a: _text(p) for (k, a), p in prices.items() if k == "hyperliquid-mid"}
            return JSONResponse({**mids, "@1": "1.0", "PURR/USDC": "0.2"})  # spot entries, as on Hyperliquid
        if kind in ("userFills", "userFillsByTime"):
            with self._lock:
                fills = list(self._fills.get(str(body.get("user", "")).lower(), []))
            since = body.get("startTime", 0) if kind == "userFillsByTime" else 0
            return JSONResponse([f for f in fills if f["time"] >= since][:2000])
        if kind == "vaultDetails":
            with self._lock:
                return JSONResponse(self._vaults.get(str(body.get("vaultAddress", "")).lower()))
        return Response("Failed to deserialize the JSON body into the target type", status_code=422)

    def _contexts(self) -> list[Any]:
        _, prices = self._view("hyperliquid")
        coins = sorted({a for (k, a) in prices if k == "hyperliquid-mark"})
        universe = [{"name": c, "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56} for c in coins]
        contexts = []
        for coin in coins:
            mark = prices[("hyperliquid-mark", coin)]
            mid = prices.get(("hyperliquid-mid", coin))
            funding, interest = self._funding.get(coin, (0.0000125, 1000.0))
            contexts.append({
                "funding": _text(funding), "openInterest": _text(interest), "prevDayPx": _text(mark),
                "dayNtlVlm": "0.0", "premium": "0.0", "oraclePx": _text(prices.get(("hyperliquid-oracle", coin), mark)),
                "markPx": _text(mark), "midPx": None if mid is None else _text(mid),
                "impactPxs": [_text(mark), _text(mark)], "dayBaseVlm": "0.0",
            })  # fmt: skip
        return [{"universe": universe, "marginTables": []}, contexts]

    async def _binance(self, request: Request) -> Response:
        fault = self._fault("binance")
        if fault is not None:
            return fault
        symbol = request.query_params.get("symbol", "")
        _, prices = self._view("binance")
        price = prices.get(("binance", symbol.removesuffix("USDT"))) if symbol.endswith("USDT") else None
        if price is None:
            return JSONResponse({"code": -1121, "msg": "Invalid symbol."}, status_code=400)
        half = price * 0.00005
        return JSONResponse({
            "symbol": symbol, "bidPrice": _text(price - half), "bidQty": "1.5",
            "askPrice": _text(price + half), "askQty": "2.0",
        })  # fmt: skip

    async def _coinbase(self, request: Request) -> Response:
        fault = self._fault("coinbase")
        if fault is not None:
            return fault
        product = request.path_params["product"]
        ts, prices = self._view("coinbase")
        price = prices.get(("coinbase", product.removesuffix("-USD"))) if product.endswith("-USD") else None
        if price is None:
            return JSONResponse({"message": "NotFound"}, status_code=404)
        return JSONResponse({
            "ask": _text(price + 0.01), "bid": _text(price - 0.01), "volume": "1000.0", "trade_id": 1,
            "price": _text(price), "size": "0.01", "time": _iso(ts, 6), "rfq_volume": "0.0",
        })  # fmt: skip

    async def _valr(self, request: Request) -> Response:
        fault = self._fault("valr")
        if fault is not None:
            return fault
        pair = request.path_params["pair"].upper()
        ts, prices = self._view("valr")
        price = prices.get(("valr", pair))
        if price is None:
            return JSONResponse({"code": -21, "message": f"Currency pair {pair} is not supported"}, status_code=400)
        return JSONResponse({
            "currencyPair": pair, "askPrice": _text(price * 1.0005), "bidPrice": _text(price * 0.9995),
            "lastTradedPrice": _text(price), "previousClosePrice": _text(price), "baseVolume": "10.0",
            "highPrice": _text(price), "lowPrice": _text(price), "created": _iso(ts, 3), "changeFromPrevious": "0",
        })  # fmt: skip

    # the trades stream -------------------------------------------------------------------------
    async def _stream(self, websocket: WebSocket) -> None:
        await websocket.accept()
        with self._lock:
            self._subscribers[websocket] = set()
        try:
            while True:
                with contextlib.suppress(ValueError, AttributeError, TypeError):
                    await self._control(websocket, json.loads(await websocket.receive_text()))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            with self._lock:
                self._subscribers.pop(websocket, None)

    async def _control(self, websocket: WebSocket, message: dict[str, Any]) -> None:
        if message.get("method") == "ping":
            await websocket.send_text(json.dumps({"channel": "pong"}))
            return
        subscription = message.get("subscription") or {}
        if message.get("method") == "subscribe" and subscription.get("type") == "trades":
            with self._lock:
                self._subscribers.get(websocket, set()).add(str(subscription.get("coin")))
            reply = {"method": "subscribe", "subscription": subscription}
            await websocket.send_text(json.dumps({"channel": "subscriptionResponse", "data": reply}))

    async def _broadcast(self, text: str, coin: str | None) -> int:
        with self._lock:
            targets = [w for w, coins in self._subscribers.items() if coin is None or coin in coins]
        sent = 0
        for websocket in targets:
            try:
                await websocket.send_text(text)
                sent += 1
            except Exception:  # noqa: BLE001 -- a socket that just went away misses the message
                with self._lock:
                    self._subscribers.pop(websocket, None)
        return sent

    async def _drop(self) -> int:
        with self._lock:
            dropped = list(self._subscribers)
            self._subscribers.clear()
        for websocket in dropped:
            with contextlib.suppress(Exception):
                await websocket.close(code=1012)
        return len(dropped)

    def _call(self, work: Any) -> Any:
        assert self._loop is not None  # noqa: S101 -- started
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)


def _prefix(name: str) -> str:
    prefix = name.split("-")[0]
    if prefix not in PREFIXES:
        raise ValueError(f"unknown prefix {name!r}; known: {PREFIXES}")
    return prefix


def _text(value: float) -> str:
    return format(value, ".10g") if value == value and abs(value) != float("inf") else str(value)


def _iso(epoch: float, digits: int) -> str:
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds" if digits == 6 else "milliseconds")
    return stamp.replace("+00:00", "Z")
