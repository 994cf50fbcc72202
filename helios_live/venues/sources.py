"""What every surveillance market-data source shares: the `Observed` result, the checked-number
helpers that turn one venue row into values or a `BadRow`, and the HTTP call that turns a transport
failure into `SourceError`.

A source never raises for a bad row: the row is counted in `Observed.bad` with a short reason. It
raises `SourceError` only when the whole answer is unusable (no connection, timeout, 429, 5xx, a
body that is not JSON or not the expected top-level shape).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import httpx

from helios_core.errors import SourceError
from helios_core.surveillance.observations import Quote, usable

__all__ = ["BadRow", "HttpSource", "Observed", "QuoteSource", "SourceError", "Tally"]

T = TypeVar("T")
MAX_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class Observed(Generic[T]):
    """What one call on a source saw: the usable `items`, how many rows or answers were `bad`,
    and the first few reasons why (at most `MAX_PROBLEMS`)."""

    items: tuple[T, ...] = ()
    bad: int = 0
    problems: tuple[str, ...] = ()


class BadRow(ValueError):
    """One row of an answer could not be used; the message is the reason kept in `problems`."""


@dataclass
class Tally(Generic[T]):
    """Collects the rows of one answer; `done()` freezes them into an `Observed`."""

    items: list[T] = field(default_factory=list)
    bad: int = 0
    problems: list[str] = field(default_factory=list)

    def keep(self, item: T) -> None:
        self.items.append(item)

    def reject(self, reason: str) -> None:
        self.bad += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(reason[:200])

    def done(self) -> Observed[T]:
        return Observed(tuple(self.items), self.bad, tuple(self.problems))


class QuoteSource(Protocol):
    """A reference venue's public ticker, in canonical asset names."""

    venue: str

    async def quotes(self, assets: Sequence[str]) -> Observed[Quote]: ...


def require(row: object, name: str) -> Any:
    """`row[name]`, or `BadRow` when the row is not an object or the field is missing or null."""
    if not isinstance(row, dict):
        raise BadRow(f"row is {type(row).__name__}, not an object")
    value = row.get(name)
    if value is None:
        raise BadRow(f"{name} missing")
    return value


def number(raw: object, name: str) -> float:
    """A finite number from a JSON number or a numeric string ("NaN", "inf", "" are refused)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadRow(f"{name} is not a number: {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise BadRow(f"{name} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise BadRow(f"{name} is not finite: {raw!r}")
    return value


def positive(raw: object, name: str) -> float:
    """A price or size the detectors may use (`usable`: finite and above zero)."""
    value = number(raw, name)
    if not usable(value):
        raise BadRow(f"{name} is not above zero: {raw!r}")
    return value


def epoch_ms(raw: object, name: str) -> float:
    """Epoch milliseconds (a JSON number) as epoch seconds."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BadRow(f"{name} is not epoch milliseconds: {raw!r}")
    return positive(raw, name) / 1000.0


_FRACTION = re.compile(r"(\.\d{6})\d+")


def iso_time(raw: object, name: str) -> float:
    """An ISO-8601 time with a zone ("...Z", "+00:00") as epoch seconds; one without a zone is
    refused, never assumed UTC. Digits past microseconds are dropped."""
    if not isinstance(raw, str):
        raise BadRow(f"{name} is not a time: {raw!r}")
    try:
        stamp = datetime.fromisoformat(_FRACTION.sub(r"\1", raw.strip()))
    except ValueError:
        raise BadRow(f"{name} is not an ISO time: {raw!r}") from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise BadRow(f"{name} has no time zone: {raw!r}")
    return stamp.timestamp()


class HttpSource:
    """An httpx client that is either lent (the caller closes it) or owned (closed by `aclose`).
    `now` stamps answers that carry no time of their own."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.now = now
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._lent = client
        self._owned: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._lent is not None:
            return self._lent
        if self._owned is None:
            self._owned = httpx.AsyncClient(timeout=self.timeout_s)
        return self._owned

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _request(
        self, method: str, path: str, *, body: object = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, parsed JSON). Raises `SourceError` for a transport failure, 429, 5xx or a body
        that is not JSON; a 4xx other than 429 comes back for the caller to judge."""
        url = f"{self.base_url}{path}"
        try:
            response = await self._client().request(method, url, json=body, params=params, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise SourceError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise SourceError(f"{method} {url}: HTTP {status}")
        try:
            return status, response.json()
        except ValueError as exc:
            raise SourceError(f"{method} {url}: HTTP {status}, body is not JSON") from exc
