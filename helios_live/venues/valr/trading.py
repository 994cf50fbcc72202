"""VALR's authenticated REST API: orders, their status, cancels, balances, fees, pair rules and
the account's trades, signed per request (docs/valr-wire.md).

What may be retried is decided by what a failure can mean. A 429 was not processed: every
request waits (Retry-After, else exponential backoff) and tries again. A timeout, a transport
error or a 5xx on a read is retried too; on an order placement it is not, because the order
may exist: `OutcomeUnknown` tells the caller to ask by its customer order id before it sends
the same id again. A 4xx is final, with the server's message. No message, log line or exception
built here holds the API secret or key.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from helios_core.errors import HeliosError, SourceError, TemporaryError
from helios_live.venues.valr.pairs import PairRules, text
from helios_live.venues.valr.rest import error_message, retry_after
from helios_live.venues.valr.signing import Credentials

ORDER_PATHS = ("/v1/orders/market", "/v1/orders/limit")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")


class VenueError(HeliosError):
    """VALR answered a request with a final error; `status` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OrderRefused(VenueError):
    """A 400: the request was invalid and nothing was done."""


class NotFound(VenueError):
    """A 404: no such order."""


class AuthenticationFailed(VenueError):
    """A 401 or 403: the key, the signature or the timestamp was refused."""


class OutcomeUnknown(TemporaryError):
    """An order placement timed out or failed on the server: it may or may not exist."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request as it is signed and sent: the body text is signed byte for byte."""

    verb: str
    path: str
    body: str = ""

    def record(self) -> dict[str, str]:
        """What the ledger keeps of it: never the headers."""
        return {"verb": self.verb, "path": self.path, "body": self.body}


def order_request(
    pair: str,
    side: str,
    quantity: Decimal,
    customer_order_id: str,
    price: Decimal | None = None,
    time_in_force: str = "GTC",
    post_only: bool = False,
) -> Request:
    """A market order (no `price`) or a limit order, as VALR takes it."""
    if price is None:
        body: dict[str, Any] = {
            "side": side, "pair": pair, "baseAmount": text(quantity), "customerOrderId": customer_order_id,
        }  # fmt: skip
        return Request("POST", ORDER_PATHS[0], _json(body))
    if time_in_force not in TIME_IN_FORCE:
        raise ValueError(f"timeInForce must be one of {TIME_IN_FORCE}, got {time_in_force!r}")
    body = {
        "side": side, "quantity": text(quantity), "price": text(price), "pair": pair, "postOnly": post_only,
        "customerOrderId": customer_order_id, "timeInForce": time_in_force,
    }  # fmt: skip
    return Request("POST", ORDER_PATHS[1], _json(body))


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


@dataclass
class RestStats:
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    errors: int = 0
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    available: float
    reserved: float
    total: float


class ValrTradingClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.25,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.clock = clock
        self._sleep = sleep
        self.stats = RestStats()
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, headers={"Accept": "application/json"}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def sign(self, request: Request) -> dict[str, str]:
        headers = self.credentials.headers(int(self.clock() * 1000), request.verb, request.path, request.body)
        if request.body:
            headers["Content-Type"] = "application/json"
        return headers

    async def send(self, request: Request, *, placing: bool = False, signed: bool = True) -> Any:
        """The JSON answer to `request`; see the module docstring for what is retried. `signed`
        False: a public endpoint, sent without the key."""
        what = f"{request.verb} {request.path}"
        for attempt in range(self.max_retries + 1):
            delay = self.backoff_s * 2**attempt
            self.stats.requests += 1
            start = time.perf_counter()
            try:
                response = await self._http.request(
                    request.verb,
                    request.path,
                    content=request.body or None,
                    headers=self.sign(request) if signed else None,
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = f"{type(exc).__name__}"
                if placing:
                    raise OutcomeUnknown(f"{what}: {problem}; the order may exist") from None
            else:
                self.stats.latencies_s.append(time.perf_counter() - start)
                status = response.status_code
                if status < 400:
                    return _body(response, what)
                message = self.credentials.redact(error_message(response)[:200])
                if status == 429:
                    self.stats.rate_limited += 1
                    problem = f"rate limited (429): {message}"
                    delay = max(delay, min(60.0, retry_after(response)))
                elif status >= 500:
                    problem = f"server error {status}: {message}"
                    if placing:
                        raise OutcomeUnknown(f"{what}: {problem}; the order may exist")
                else:
                    self.stats.errors += 1
                    kind = _REFUSALS.get(status, OrderRefused)
                    raise kind(f"{what} refused with {status}: {message}", status)
            if attempt == self.max_retries:
                self.stats.errors += 1
                raise TemporaryError(f"{what}: {problem}; gave up after {attempt + 1} attempts")
            self.stats.retries += 1
            await self._sleep(delay)
        raise AssertionError("unreachable")

    async def place(self, request: Request) -> str:
        """Send an order request; VALR's order id. `OutcomeUnknown` when it may exist anyway."""
        answer = await self.send(request, placing=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise OutcomeUnknown(f"{request.verb} {request.path}: answer without an order id: {str(answer)[:200]}")
        return str(answer["id"])

    async def order(self, pair: str, customer_order_id: str) -> dict[str, Any] | None:
        """The order's status by its customer order id; None when VALR does not know it."""
        path = f"/v1/orders/{pair}/customerorderid/{quote(customer_order_id, safe='')}"
        try:
            answer = await self.send(Request("GET", path))
        except NotFound:
            return None
        return _object(answer, path)

    async def open_orders(self) -> list[dict[str, Any]]:
        return _list(await self.send(Request("GET", "/v1/orders/open")), "/v1/orders/open")

    async def cancel(self, pair: str, customer_order_id: str) -> bool:
        """Ask VALR to cancel one order; False when it is unknown or already over."""
        body = _json({"pair": pair, "customerOrderId": customer_order_id})
        try:
            await self.send(Request("DELETE", "/v1/orders/order", body))
        except NotFound:
            return False
        return True

    async def cancel_all(self, pair: str | None = None) -> list[dict[str, Any]]:
        path = f"/v1/orders/{pair}" if pair else "/v1/orders"
        answer = await self.send(Request("DELETE", path))
        return _list(answer, path) if answer is not None else []

    async def balances(self) -> dict[str, Balance]:
        rows = _list(await self.send(Request("GET", "/v1/account/balances")), "/v1/account/balances")
        try:
            return {
                str(r["currency"]): Balance(
                    str(r["currency"]), float(r["available"]), float(r["reserved"]), float(r["total"])
                )
                for r in rows
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"/v1/account/balances: malformed balance: {exc!r}") from None

    async def fees(self) -> dict[str, tuple[float, float]]:
        """(maker, taker) fee per pair, as fractions of the notional."""
        rows = _list(await self.send(Request("GET", "/v1/account/fees/trade")), "/v1/account/fees/trade")
        try:
            return {
                str(r["currencyPair"]): (float(r["makerPercentage"]) / 100, float(r["takerPercentage"]) / 100)
                for r in rows
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"/v1/account/fees/trade: malformed fee: {exc!r}") from None

    async def pairs(self) -> dict[str, PairRules]:
        answer = await self.send(Request("GET", "/v1/public/pairs"), signed=False)
        rules = (PairRules.parse(item) for item in _list(answer, "/v1/public/pairs"))
        return {r.pair: r for r in rules}

    async def trades(self, limit: int = 100) -> list[dict[str, Any]]:
        """The account's most recent trades, newest first."""
        path = f"/v1/account/tradehistory?limit={min(max(limit, 1), 100)}"
        return _list(await self.send(Request("GET", path)), path)


_REFUSALS: dict[int, type[VenueError]] = {401: AuthenticationFailed, 403: AuthenticationFailed, 404: NotFound}


def _body(response: httpx.Response, what: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise SourceError(f"{what}: the answer is not JSON: {response.text[:120]!r}") from None


def _list(answer: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
        raise SourceError(f"{what}: expected a JSON list of objects, got {str(answer)[:120]}")
    return answer


def _object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise SourceError(f"{what}: expected a JSON object, got {str(answer)[:120]}")
    return answer
