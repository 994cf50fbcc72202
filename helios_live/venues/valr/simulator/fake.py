"""A fake VALR account on loopback: the authenticated REST API and the account WebSocket of
docs/valr-wire.md, for tests, the demo and benchmarks.

It verifies every signature and timestamp (and refuses a bad one as VALR does), keeps a static
order book per pair around a mid price, fills market orders level by level and limit orders by
their time in force, charges VALR's fees (a buy's in the base currency, a sell's in the quote),
moves balances, refuses a customer order id it has seen, and tells the account stream about
every order in VALR's order of events. It misbehaves on command: a status for the next requests
(429 with Retry-After, 5xx), a placement held past the client's timeout (placed or not), a
refusal, a partial fill, dropped or refused streams and raw messages.

It runs in a thread of its own (uvicorn on its own event loop), so sync tests, async tests and
a process under test can all use it; the control methods are safe from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from helios_live.venues.loopback import LoopbackServer
from helios_live.venues.valr.signing import signature

OPEN = ("Placed", "Partially Filled")


@dataclass(frozen=True)
class PairSpec:
    base: str
    quote: str
    mid: float
    tick: float = 1.0
    min_base: str = "0.0001"
    max_base: str = "5"
    min_quote: str = "10"
    base_decimals: int = 8
    spread_bps: float = 10.0
    levels: int = 10
    level_size: float = 0.05
    level_step_bps: float = 2.0


BTCZAR = PairSpec("BTC", "ZAR", 1_200_000.0)


@dataclass
class _Order:
    order_id: str
    cid: str
    pair: str
    side: str  # BUY | SELL
    kind: str  # market | limit
    quantity: float
    price: float | None
    time_in_force: str
    post_only: bool
    status: str = "Placed"
    filled: float = 0.0
    notional: float = 0.0
    fee: float = 0.0
    reason: str = ""
    created: str = ""
    updated: str = ""

    def status_object(self, spec: PairSpec) -> dict[str, Any]:
        average = self.notional / self.filled if self.filled > 0 else 0.0
        return {
            "orderId": self.order_id, "customerOrderId": self.cid, "currencyPair": self.pair,
            "orderSide": self.side.lower(), "orderType": self.kind, "orderStatusType": self.status,
            "originalQuantity": _text(self.quantity), "remainingQuantity": _text(max(self.quantity - self.filled, 0)),
            "originalPrice": _text(self.price or 0.0), "averagePrice": _text(average), "totalFee": _text(self.fee),
            "feeCurrency": spec.base if self.side == "BUY" else spec.quote, "failedReason": self.reason,
            "timeInForce": self.time_in_force, "orderCreatedAt": self.created, "orderUpdatedAt": self.updated,
        }  # fmt: skip

    def open_object(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id, "customerOrderId": self.cid, "side": self.side.lower(),
            "remainingQuantity": _text(self.quantity - self.filled), "originalQuantity": _text(self.quantity),
            "price": _text(self.price or 0.0), "currencyPair": self.pair, "createdAt": self.created,
            "filledPercentage": _text(100 * self.filled / self.quantity), "type": self.kind,
            "timeInForce": self.time_in_force,
        }  # fmt: skip


@dataclass
class _Faults:
    statuses: list[tuple[int, float]] = field(default_factory=list)
    holds: list[tuple[float, bool]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    partials: list[float] = field(default_factory=list)
    refuse_streams_until: float = 0.0


class FakeValr(LoopbackServer):
    name = "fake VALR server"
    ws_path = "/ws/account"

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        pairs: dict[str, PairSpec] | None = None,
        balances: dict[str, float] | None = None,
        taker_fee_pct: float = 0.35,
        maker_fee_pct: float = 0.18,
        recv_window_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` stamps orders and trades (a replay's market time, or the machine's); signatures
        are always checked against the machine's clock, as VALR checks them against its own."""
        self.api_key, self._secret = api_key, api_secret
        self.pairs = dict(pairs or {"BTCZAR": BTCZAR})
        self.wallet = dict(balances or {"ZAR": 1_000_000.0, "BTC": 1.0, "ETH": 10.0})
        self.taker, self.maker = taker_fee_pct / 100, maker_fee_pct / 100
        self.recv_window_ms, self.clock = recv_window_ms, clock
        self.orders: list[_Order] = []
        self._trades: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, int]] = []  # (verb, path, status)
        self.received: list[str] = []  # every header and body the server was sent
        self.placements = 0  # orders that exist
        self.placements_started = 0  # order requests that arrived
        self.faults = _Faults()
        self._lock = threading.RLock()
        self._sockets: set[WebSocket] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = self.ws_url = ""

    # serving ---------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        routes = [
            Route("/v1/public/pairs", self._pairs, methods=["GET"]),
            Route("/v1/orders/market", self._place, methods=["POST"]),
            Route("/v1/orders/limit", self._place, methods=["POST"]),
            Route("/v1/orders/open", self._open_orders, methods=["GET"]),
            Route("/v1/orders/order", self._cancel, methods=["DELETE"]),
            Route("/v1/orders", self._cancel_all, methods=["DELETE"]),
            Route("/v1/orders/{pair}", self._cancel_all, methods=["DELETE"]),
            Route("/v1/orders/{pair}/customerorderid/{cid}", self._status, methods=["GET"]),
            Route("/v1/orders/{pair}/orderid/{oid}", self._status, methods=["GET"]),
            Route("/v1/account/balances", self._balances, methods=["GET"]),
            Route("/v1/account/fees/trade", self._fees, methods=["GET"]),
            Route("/v1/account/tradehistory", self._history, methods=["GET"]),
            WebSocketRoute("/ws/account", self._stream),
            Route("/sim/clock", self._set_clock, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    # faults, from any thread -------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, retry_after_s: float = 0.0) -> None:
        with self._lock:
            self.faults.statuses += [(status, retry_after_s)] * count

    def timeout_next(self, delay_s: float, place: bool) -> None:
        """The next placement is answered only after `delay_s`; with `place` the order is made at
        once anyway (the client times out on an order that exists), without it never."""
        with self._lock:
            self.faults.holds.append((delay_s, place))

    def reject_next(self, message: str) -> None:
        with self._lock:
            self.faults.refusals.append(message)

    def partial_next(self, fraction: float) -> None:
        with self._lock:
            self.faults.partials.append(fraction)

    def refuse_streams(self, seconds: float) -> None:
        self.faults.refuse_streams_until = time.monotonic() + seconds

    def drop_streams(self) -> int:
        return self._call(self._drop()) or 0

    def send_raw(self, text: str) -> None:
        self._call(self._broadcast_raw(text))

    def place_external(self, pair: str, side: str, quantity: float) -> str:
        """A market order on the account that Helios never sent."""
        order = self._new(pair, side, "market", quantity, None, "IOC", False, f"outside-{uuid.uuid4().hex[:8]}")
        self._call(self._process(order))
        return order.order_id

    # introspection ---------------------------------------------------------------------------
    def orders_by_customer_id(self, cid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [o.status_object(self.pairs[o.pair]) for o in self.orders if o.cid == cid]

    def trades(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._trades)

    def open_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [o.open_object() for o in self.orders if o.status in OPEN]

    @property
    def connections(self) -> int:
        """Account streams connected now."""
        return len(self._sockets)

    def balances(self) -> dict[str, float]:
        with self._lock:
            return dict(self.wallet)

    def _call(self, work: Any) -> Any:
        assert self._loop is not None  # noqa: S101 -- started
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    # authentication -----------------------------------------------------------------------------
    def _refusal(self, verb: str, path: str, headers: Any, body: str) -> str | None:
        key, sig, stamp = (headers.get(h, "") for h in ("x-valr-api-key", "x-valr-signature", "x-valr-timestamp"))
        self.received.append(json.dumps(dict(headers)) + body)
        if not hmac.compare_digest(key, self.api_key):
            return "API key or secret is invalid"
        if not stamp.isdigit():
            return "Request timestamp is missing or malformed"
        if abs(time.time() * 1000 - int(stamp)) > self.recv_window_ms:  # signed on the wall clock, always
            return "Request has expired: the timestamp is outside the receive window"
        wanted = signature(self._secret, int(stamp), verb, path, body, headers.get("x-valr-sub-account-id", ""))
        if not hmac.compare_digest(sig, wanted):
            return "Request has an invalid signature"
        return None

    async def _authorised(self, request: Request) -> tuple[Response | None, str]:
        body = (await request.body()).decode()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        refusal = self._refusal(request.method, path, request.headers, body)
        if refusal is not None:
            return self._answer(request, 401, {"code": -11, "message": refusal}), body
        with self._lock:
            fault = self.faults.statuses.pop(0) if self.faults.statuses else None
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": f"{retry_after:g}", "x-valr-ratelimited": "true"} if status == 429 else {}
            message = "Rate limited" if status == 429 else "Internal server error"
            return self._answer(request, status, {"code": -1, "message": message}, headers), body
        return None, body

    def _answer(self, request: Request, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        self.requests.append((request.method, request.url.path, status))
        return JSONResponse(body, status, headers=headers)

    async def _set_clock(self, request: Request) -> Response:
        """A replay's market time (`{"at": epoch seconds}`), which fills are stamped with from now on."""
        at, set_at = float((await request.json())["at"]), time.time()
        self.clock = lambda: at + (time.time() - set_at)
        return JSONResponse({"at": at})

    # REST -----------------------------------------------------------------------------------------
    async def _pairs(self, request: Request) -> Response:
        items = [
            {
                "symbol": pair,
                "baseCurrency": s.base,
                "quoteCurrency": s.quote,
                "shortName": f"{s.base}/{s.quote}",
                "active": True,
                "minBaseAmount": s.min_base,
                "maxBaseAmount": s.max_base,
                "minQuoteAmount": s.min_quote,
                "maxQuoteAmount": "10000000",
                "tickSize": _text(s.tick),
                "baseDecimalPlaces": str(s.base_decimals),
                "currencyPairType": "SPOT",
            }  # fmt: skip
            for pair, s in self.pairs.items()
        ]
        return self._answer(request, 200, items)

    async def _place(self, request: Request) -> Response:
        refused, raw = await self._authorised(request)
        if refused is not None:
            return refused
        with self._lock:
            self.placements_started += 1
            hold = self.faults.holds.pop(0) if self.faults.holds else None
            refusal = self.faults.refusals.pop(0) if self.faults.refusals else None
        if refusal is not None:
            return self._answer(request, 400, {"code": -1, "message": refusal})
        try:
            order = self._parse(request.url.path.endswith("/limit"), raw)
        except ValueError as exc:
            return self._answer(request, 400, {"code": -1, "message": str(exc)})
        if hold is not None:
            delay, place = hold
            if place:
                self._keep(order)
                self._spawn(self._process(order))
            await asyncio.sleep(delay)
            if not place:
                return self._answer(request, 504, {"code": -1, "message": "Gateway timeout"})
            return self._answer(request, 202, {"id": order.order_id})
        self._keep(order)
        self._spawn(self._process(order))
        return self._answer(request, 202, {"id": order.order_id})

    def _parse(self, limit: bool, raw: str) -> _Order:
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("Request body is not JSON") from None
        if not isinstance(body, dict):
            raise ValueError("Request body is not a JSON object")
        pair, side, cid = (
            str(body.get("pair", "")),
            str(body.get("side", "")).upper(),
            str(body.get("customerOrderId", "")),
        )
        if pair not in self.pairs:
            raise ValueError(f"Unknown currency pair {pair!r}")
        if side not in ("BUY", "SELL"):
            raise ValueError("side must be BUY or SELL")
        spec = self.pairs[pair]
        amount = str(body.get("quantity" if limit else "baseAmount", ""))
        quantity = _decimal(amount, "quantity" if limit else "baseAmount")
        if "." in amount and len(amount.split(".")[1]) > spec.base_decimals:
            raise ValueError(f"Too many decimal places: {pair} takes {spec.base_decimals}")
        if quantity < float(spec.min_base):
            raise ValueError(f"Minimum order size not met: {spec.min_base} {spec.base}")
        price, tif, post_only = None, "IOC", False
        if limit:
            price = _decimal(str(body.get("price", "")), "price")
            if abs(price / spec.tick - round(price / spec.tick)) > 1e-9:
                raise ValueError(f"price must be a multiple of the tick size {spec.tick:g}")
            tif, post_only = str(body.get("timeInForce", "GTC")), bool(body.get("postOnly", False))
            if tif not in ("GTC", "IOC", "FOK"):
                raise ValueError("timeInForce must be GTC, IOC or FOK")
        with self._lock:
            if cid and any(o.cid == cid for o in self.orders):
                raise ValueError(f"Duplicate customerOrderId {cid!r}")
        return self._new(pair, side, "limit" if limit else "market", quantity, price, tif, post_only, cid)

    def _new(
        self, pair: str, side: str, kind: str, quantity: float, price: float | None, tif: str, post_only: bool, cid: str
    ) -> _Order:
        now = _iso(self.clock())
        return _Order(
            str(uuid.uuid4()), cid, pair, side, kind, quantity, price, tif, post_only, created=now, updated=now
        )

    def _keep(self, order: _Order) -> None:
        with self._lock:
            if order not in self.orders:
                self.orders.append(order)
                self.placements += 1

    async def _status(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        if refused is not None:
            return refused
        cid, oid = request.path_params.get("cid"), request.path_params.get("oid")
        with self._lock:
            found = [
                o for o in self.orders if (cid is not None and o.cid == cid) or (oid is not None and o.order_id == oid)
            ]
        if not found or found[0].pair != request.path_params["pair"]:
            return self._answer(request, 404, {"code": -1, "message": "Order not found"})
        return self._answer(request, 200, found[0].status_object(self.pairs[found[0].pair]))

    async def _open_orders(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        return refused or self._answer(request, 200, self.open_orders())

    async def _cancel(self, request: Request) -> Response:
        refused, raw = await self._authorised(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(request, 400, {"code": -1, "message": "Request body is not JSON"})
        with self._lock:
            oid, cid = body.get("orderId"), body.get("customerOrderId")
            found = [o for o in self.orders if o.status in OPEN and o.pair == body.get("pair")
                     and (o.order_id == oid or (o.cid and o.cid == cid))]  # fmt: skip
        if not found:
            return self._answer(request, 404, {"code": -1, "message": "Order not found or not open"})
        await self._end(found[0], "Cancelled", "")
        return self._answer(request, 200, {})

    async def _cancel_all(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        if refused is not None:
            return refused
        pair = request.path_params.get("pair")
        with self._lock:
            found = [o for o in self.orders if o.status in OPEN and (pair is None or o.pair == pair)]
        for order in found:
            await self._end(order, "Cancelled", "")
        return self._answer(request, 200, [{"orderId": o.order_id, "customerOrderId": o.cid} for o in found])

    async def _balances(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        if refused is not None:
            return refused
        with self._lock:
            items = [self._balance(c) for c in self.wallet]
        return self._answer(request, 200, items)

    async def _fees(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        maker, taker = _text(self.maker * 100), _text(self.taker * 100)
        items = [{"currencyPair": p, "makerPercentage": maker, "takerPercentage": taker}
                 for p in self.pairs]  # fmt: skip
        return refused or self._answer(request, 200, items)

    async def _history(self, request: Request) -> Response:
        refused, _ = await self._authorised(request)
        if refused is not None:
            return refused
        limit = min(max(int(request.query_params.get("limit", "100") or 100), 1), 100)
        with self._lock:
            return self._answer(request, 200, list(reversed(self._trades))[:limit])

    def _balance(self, currency: str) -> dict[str, Any]:
        reserved = sum(
            (o.quantity - o.filled) * (o.price or 0) if o.side == "BUY" else o.quantity - o.filled
            for o in self.orders
            if o.status in OPEN and o.kind == "limit"
            and (self.pairs[o.pair].quote if o.side == "BUY" else self.pairs[o.pair].base) == currency
        )  # fmt: skip
        total = self.wallet.get(currency, 0.0)
        return {"currency": currency, "available": _text(max(total - reserved, 0.0)), "reserved": _text(reserved),
                "total": _text(total), "updatedAt": _iso(self.clock())}  # fmt: skip

    # matching ---------------------------------------------------------------------------------------
    def _levels(self, pair: str, side: str) -> list[tuple[float, float]]:
        s = self.pairs[pair]
        half, step = s.mid * s.spread_bps / 20_000, s.mid * s.level_step_bps / 10_000
        sign = 1 if side == "BUY" else -1  # a buy takes the asks, above the mid
        return [(round((s.mid + sign * (half + i * step)) / s.tick) * s.tick, s.level_size) for i in range(s.levels)]

    async def _process(self, order: _Order) -> None:
        await asyncio.sleep(0)  # the 202 leaves first, as on VALR
        self._keep(order)
        spec = self.pairs[order.pair]
        with self._lock:
            fraction = self.faults.partials.pop(0) if self.faults.partials and order.kind == "market" else 1.0
        levels = self._levels(order.pair, order.side)
        if order.price is not None:
            crossing = [(p, q) for p, q in levels if (p <= order.price if order.side == "BUY" else p >= order.price)]
            if order.post_only and crossing:
                await self._fail(order, "Post only cancelled")
                return
            if order.time_in_force == "FOK" and sum(q for _, q in crossing) < order.quantity:
                await self._fail(order, "Fill or kill could not be filled")
                return
            levels = crossing
        wanted = order.quantity * fraction
        fills, left = [], wanted
        for price, size in levels:
            if left <= 1e-12:
                break
            take = min(size, left)
            fills.append((price, take))
            left -= take
        cost = sum(p * q for p, q in fills)
        if (
            order.side == "BUY"
            and cost > self.wallet.get(spec.quote, 0.0)
            or order.side == "SELL"
            and (sum(q for _, q in fills) > self.wallet.get(spec.base, 0.0))
        ):
            await self._fail(order, "Insufficient Balance")
            return
        await self._send(
            {"type": "ORDER_PROCESSED", "data": {"orderId": order.order_id, "success": True, "failureReason": ""}}
        )
        for price, quantity in fills:
            await self._trade(order, spec, price, quantity)
        if order.filled >= order.quantity - 1e-12:
            await self._end(order, "Filled", "")
        elif order.kind == "limit" and order.time_in_force == "GTC":
            await self._notify(order)
        else:
            await self._end(order, "Cancelled", "the book could not fill the rest" if order.filled else "")

    async def _trade(self, order: _Order, spec: PairSpec, price: float, quantity: float) -> None:
        with self._lock:
            if order.side == "BUY":
                fee, fee_currency = quantity * self.taker, spec.base
                self.wallet[spec.quote] = self.wallet.get(spec.quote, 0.0) - price * quantity
                self.wallet[spec.base] = self.wallet.get(spec.base, 0.0) + quantity - fee
            else:
                fee, fee_currency = price * quantity * self.taker, spec.quote
                self.wallet[spec.base] = self.wallet.get(spec.base, 0.0) - quantity
                self.wallet[spec.quote] = self.wallet.get(spec.quote, 0.0) + price * quantity - fee
            order.filled += quantity
            order.notional += price * quantity
            order.fee += fee
            order.updated = _iso(self.clock())
            trade = {
                "id": str(uuid.uuid4()), "orderId": order.order_id, "customerOrderId": order.cid,
                "currencyPair": order.pair, "side": order.side.lower(), "price": _text(price),
                "quantity": _text(quantity), "fee": _text(fee), "feeCurrency": fee_currency, "tradedAt": order.updated,
            }  # fmt: skip
            self._trades.append(trade)
        await self._send({"type": "NEW_ACCOUNT_TRADE", "currencyPairSymbol": order.pair, "data": trade})

    async def _fail(self, order: _Order, reason: str) -> None:
        await self._send(
            {"type": "ORDER_PROCESSED", "data": {"orderId": order.order_id, "success": False, "failureReason": reason}}
        )
        await self._end(order, "Failed", reason)
        data = {
            "orderId": order.order_id,
            "customerOrderId": order.cid,
            "currencyPair": order.pair,
            "failedReason": reason,
        }
        await self._send({"type": "FAILED_ORDER", "data": data})

    async def _end(self, order: _Order, status: str, reason: str) -> None:
        with self._lock:
            order.status, order.reason, order.updated = status, reason, _iso(self.clock())
        await self._notify(order)

    async def _notify(self, order: _Order) -> None:
        spec = self.pairs[order.pair]
        await self._send({"type": "ORDER_STATUS_UPDATE", "data": order.status_object(spec)})
        await self._send({"type": "OPEN_ORDERS_UPDATE", "data": self.open_orders()})
        for currency in (spec.base, spec.quote):
            with self._lock:
                balance = self._balance(currency)
            await self._send({"type": "BALANCE_UPDATE", "data": balance | {"currency": {"symbol": currency}}})

    # the account stream ---------------------------------------------------------------------------
    async def _stream(self, websocket: WebSocket) -> None:
        refusal = self._refusal("GET", "/ws/account", websocket.headers, "")
        if refusal is not None or time.monotonic() < self.faults.refuse_streams_until:
            await websocket.close(code=1008)  # before the upgrade: the client sees HTTP 403
            return
        await websocket.accept()
        self._sockets.add(websocket)
        try:
            await websocket.send_text(json.dumps({"type": "AUTHENTICATED"}))
            while True:
                message = await websocket.receive_text()
                with contextlib.suppress(ValueError):
                    if json.loads(message).get("type") == "PING":
                        await websocket.send_text(json.dumps({"type": "PONG"}))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._sockets.discard(websocket)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._broadcast_raw(json.dumps(message))

    async def _broadcast_raw(self, text: str) -> None:
        for websocket in list(self._sockets):
            try:
                await websocket.send_text(text)
            except Exception:  # noqa: BLE001 -- a socket that just went away misses the message, as on VALR
                self._sockets.discard(websocket)

    async def _drop(self) -> int:
        dropped = list(self._sockets)
        self._sockets.clear()
        for websocket in dropped:
            with contextlib.suppress(Exception):
                await websocket.close(code=1012)
        return len(dropped)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _text(value: float) -> str:
    return format(round(value, 10), "f").rstrip("0").rstrip(".") or "0"


def _decimal(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a decimal string, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return number


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main(argv: list[str] | None = None) -> None:
    """Serve a fake VALR account in a process of its own (a benchmark's peer): prints its base
    URL on the first line, then serves until it is terminated."""
    import argparse
    import signal
    import sys
    from dataclasses import asdict

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret-env", default="FAKE_VALR_SECRET", help="the variable holding the secret")
    parser.add_argument("--pairs", default=json.dumps({"BTCZAR": asdict(BTCZAR)}), help="JSON: pair -> PairSpec fields")
    parser.add_argument("--balances", default="", help="JSON: currency -> amount")
    args = parser.parse_args(argv)
    import os

    pairs = {name: PairSpec(**spec) for name, spec in json.loads(args.pairs).items()}
    balances = json.loads(args.balances) if args.balances else None
    fake = FakeValr(api_key=args.api_key, api_secret=os.environ[args.api_secret_env], pairs=pairs, balances=balances)
    fake.start()
    sys.stdout.write(fake.url + "\n")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    fake.stop()


if __name__ == "__main__":
    main()
