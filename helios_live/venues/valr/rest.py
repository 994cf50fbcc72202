"""VALR public REST market data: price buckets and trade history.

`GET /v1/public/{pair}/buckets?periodSeconds=&startTime=&endTime=` returns at most 300
buckets a call, so a window is fetched in slices of 300 periods. `GET /v1/public/{pair}/trades`
pages backwards with `beforeId`. 429 honours Retry-After, 5xx / timeouts back off
exponentially, any other 4xx fails at once with the server's message and the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pandas as pd

from helios_core.candles import empty_candles, trades_to_candles, validate_candles, validate_trades
from helios_core.errors import DataValidationError, SourceError, TemporaryError
from helios_core.numbers import strict_number
from helios_core.timeframes import Timeframe
from helios_live.data.sources.base import CandleBatch

MAX_BUCKETS = 300
TRADES_PAGE = 100
PERIODS = (60, 300, 900)
ONE_MINUTE = Timeframe.parse("1m")
_BUCKET_FIELDS = ("startTime", "open", "high", "low", "close", "volume")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ValrRestSource:
    """A `MarketDataSource` over VALR's public REST API (or a local server speaking it)."""

    name = "valr"

    def __init__(
        self,
        base_url: str = "https://api.valr.com",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        period_seconds: int = 60,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        if period_seconds not in PERIODS:
            raise ValueError(f"periodSeconds must be one of {PERIODS}")
        self.base_url = base_url.rstrip("/")
        self.timeframe = Timeframe.from_seconds(period_seconds)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.requests = 0
        self._clock = clock
        self._sleep = sleep
        self._client = client or httpx.Client(timeout=timeout_s, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        request = f"GET {url}?{httpx.QueryParams(params)}"
        for attempt in range(self.max_retries + 1):
            delay = self.backoff_s * (2**attempt)
            try:
                self.requests += 1
                response = self._client.get(url, params=params)
            except httpx.TimeoutException as exc:
                problem: str = f"timed out ({exc.__class__.__name__})"
            except httpx.TransportError as exc:
                problem = f"connection failed: {exc}"
            else:
                if response.status_code == 429:
                    problem = "rate limited (429)"
                    delay = max(delay, retry_after(response))
                elif response.status_code >= 500:
                    problem = f"server error {response.status_code}"
                elif response.status_code >= 400:
                    raise SourceError(f"{request} failed with {response.status_code}: {error_message(response)}")
                else:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise SourceError(
                            f"{request} returned a body that is not JSON: {response.text[:200]!r}"
                        ) from exc
            if attempt == self.max_retries:
                raise TemporaryError(f"{request}: {problem}; gave up after {attempt + 1} attempts")
            self._sleep(delay)
        raise AssertionError("unreachable")

    def fetch_candles(self, pair: str, start: datetime, end: datetime) -> CandleBatch:
        period = self.timeframe.seconds
        complete_until = min(pd.Timestamp(end), pd.Timestamp(self.timeframe.floor(self._clock())))
        rows: list[dict[str, Any]] = []
        slice_start = start
        while slice_start < end:
            slice_end = min(end, slice_start + timedelta(seconds=period * MAX_BUCKETS))
            params = {
                "periodSeconds": period,
                "startTime": int(slice_start.timestamp()),
                "endTime": int(slice_end.timestamp()),
            }
            page = self._get(f"/v1/public/{pair}/buckets", params)
            rows.extend(_parse_buckets(page, pair, f"GET /v1/public/{pair}/buckets {params}"))
            slice_start = slice_end
        origin = f"{self.base_url}/v1/public/{pair}/buckets"
        if not rows:
            raise SourceError(f"{origin}: empty answer for {pair} in [{start.isoformat()}, {end.isoformat()})")
        frame = pd.DataFrame(rows).drop_duplicates("ts", keep="last").sort_values("ts")
        frame = frame.loc[(frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))]
        candles = validate_candles(frame, self.timeframe, origin) if len(frame) else empty_candles()
        closed = candles["ts"] + self.timeframe.duration <= complete_until
        # The exchange's history runs back past `start`, so the window starts complete.
        closed_candles = candles.loc[closed].reset_index(drop=True)
        return CandleBatch(pair, self.timeframe, closed_candles, pd.Timestamp(start), complete_until, origin)

    def reference_candles(self, pair: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """1m candles rebuilt from the trade history (about 100 paged requests per busy day)."""
        if self.timeframe != ONE_MINUTE:
            return None
        trades = self.fetch_trades(pair, start, end)
        complete_until = min(pd.Timestamp(end), pd.Timestamp(ONE_MINUTE.floor(self._clock())))
        return trades_to_candles(trades, ONE_MINUTE, complete_until)

    def fetch_trades(self, pair: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Validated trades in `[start, end)`, oldest first."""
        rows: list[dict[str, Any]] = []
        before_id: str | None = None
        params: dict[str, Any] = {
            "startTime": int(start.timestamp()),
            "endTime": int(end.timestamp()),
            "limit": TRADES_PAGE,
        }
        while True:
            page_params = params | ({"beforeId": before_id} if before_id else {})
            page = self._get(f"/v1/public/{pair}/trades", page_params)
            parsed = _parse_trades(page, f"GET /v1/public/{pair}/trades {page_params}")
            rows.extend(parsed)
            if len(parsed) < TRADES_PAGE:
                break
            before_id = parsed[-1]["trade_id"]
        origin = f"{self.base_url}/v1/public/{pair}/trades"
        frame = pd.DataFrame(rows, columns=["ts", "trade_id", "side", "price", "quantity"])
        frame = frame.loc[(frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))]
        return validate_trades(frame.iloc[::-1], origin)


def retry_after(response: httpx.Response) -> float:
    """A 429's Retry-After in seconds (0 when absent or unreadable)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def error_message(response: httpx.Response) -> str:
    """What a failed answer says: its `message`, else its body or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body)[:200]


def _timestamp(value: Any, where: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"{where}: bad timestamp {value!r}") from exc
    if ts.tzinfo is None:
        raise DataValidationError(f"{where}: timestamp {value!r} has no UTC offset")
    return ts.tz_convert("UTC")


def _parse_buckets(page: Any, pair: str, request: str) -> list[dict[str, Any]]:
    if not isinstance(page, list):
        raise SourceError(f"{request}: expected a JSON list of buckets, got {type(page).__name__}")
    rows = []
    for i, bucket in enumerate(page):
        where = f"{request}: bucket {i}"
        if not isinstance(bucket, dict) or any(k not in bucket for k in _BUCKET_FIELDS):
            raise SourceError(f"{where}: malformed bucket {str(bucket)[:200]}")
        if bucket.get("currencyPairSymbol", pair) != pair:
            raise SourceError(f"{where}: bucket for {bucket['currencyPairSymbol']}, asked for {pair}")
        row: dict[str, Any] = {"ts": _timestamp(bucket["startTime"], where)}
        for key in _BUCKET_FIELDS[1:]:
            try:
                row[key] = strict_number(bucket[key])
            except (TypeError, ValueError) as exc:
                raise SourceError(f"{where}: {key}={bucket[key]!r} is not a number") from exc
        rows.append(row)
    return rows


def _parse_trades(page: Any, request: str) -> list[dict[str, Any]]:
    if not isinstance(page, list):
        raise SourceError(f"{request}: expected a JSON list of trades, got {type(page).__name__}")
    rows = []
    for i, trade in enumerate(page):
        where = f"{request}: trade {i}"
        try:
            rows.append(
                {
                    "ts": _timestamp(trade["tradedAt"], where),
                    "trade_id": str(trade["id"]),
                    "side": str(trade["takerSide"]).upper(),
                    "price": strict_number(trade["price"]),
                    "quantity": strict_number(trade["quantity"]),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{where}: malformed trade {str(trade)[:200]}") from exc
    return rows
