"""The API's audit: every refusal (400, 401, 403, 405, 413, 415, 422, 429, a WebSocket closed
before it opened) and every carried-out mutation under /api or /ui, with who, when and what.

Refusals are sampled per client and minute: the first `ITEMISED_PER_CLIENT` of a client in a
minute are rows of their own; the rest are counted, and become one `SUPPRESSED` row per client
and status when the minute ends. Across all clients at most `ITEMISED_PER_MINUTE` refusals a
minute are itemised. A flood costs the ledger a bounded number of rows and loses no count.
Actions are always itemised (they need a principal, and are rate-limited).

The event loop only appends to a list; a background task hands the list to the ledger on a
thread every `flush_s`. While the ledger is unreachable rows wait in memory (at most
`PENDING_MAX`, the oldest dropped first and counted in the log): the audit does not use the
engine's disk spool.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios_live.api.auth import Authenticator
from helios_live.api.gate import IDENTITY, PRINCIPAL, client_of
from helios_live.api.principals import Principal
from helios_live.api.text import has_control
from helios_live.ledger import Ledger, LedgerError
from helios_live.ledger.audit import AuditRecord

log = logging.getLogger("helios.live")
AUDITED = frozenset({400, 401, 403, 405, 413, 415, 422, 429})
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ITEMISED_PER_CLIENT = 10
ITEMISED_PER_MINUTE = 600
PENDING_MAX = 10_000
DETAIL = "helios.detail"  # scope key: a route's refusal detail when its body is not JSON (an HTML page)
_LIMITS = {"client": 64, "method": 16, "path": 512, "detail": 1000, "body": 2000, "principal": 64}


def _clean(text: str, field: str) -> str:
    """Storable text: control characters and lone surrogates escaped (PostgreSQL refuses a NUL),
    cut to the column's length."""
    if has_control(text):
        text = "".join(c.encode("unicode_escape").decode("ascii") if has_control(c) else c for c in text)
    return text[: _LIMITS[field]]


class AuditRecorder:
    def __init__(
        self, ledger: Ledger, now: Callable[[], datetime] = lambda: datetime.now(UTC), flush_s: float = 1.0
    ) -> None:
        self.ledger = ledger
        self.now = now
        self.flush_s = flush_s
        self.dropped = 0  # rows lost to a full queue while the ledger was unreachable
        self._pending: list[AuditRecord] = []
        self._minute: datetime | None = None
        self._itemised: Counter[str] = Counter()
        self._suppressed: Counter[tuple[str, int]] = Counter()
        self._lock = asyncio.Lock()

    def refused(
        self, client: str, method: str, path: str, status: int, detail: str | None, who: Principal | None
    ) -> None:
        at = self.now()
        self._roll(at)
        if self._itemised[client] >= ITEMISED_PER_CLIENT or self._itemised.total() >= ITEMISED_PER_MINUTE:
            known = (client, status) in self._suppressed or len(self._suppressed) < ITEMISED_PER_MINUTE
            self._suppressed[(client if known else "*", status)] += 1
            return
        self._itemised[client] += 1
        self._add(self._record(at, "REFUSED", client, method, path, status, who, detail=detail))

    def acted(self, client: str, method: str, path: str, status: int, who: Principal | None, body: str | None) -> None:
        at = self.now()
        self._roll(at)
        self._add(self._record(at, "ACTION", client, method, path, status, who, body=body))

    def _record(
        self,
        at: datetime,
        kind: str,
        client: str,
        method: str,
        path: str,
        status: int,
        who: Principal | None,
        *,
        detail: str | None = None,
        body: str | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            at=at,
            kind=kind,
            client=_clean(client, "client"),
            method=_clean(method, "method"),
            path=_clean(path, "path"),
            status=status,
            detail=None if detail is None else _clean(detail, "detail"),
            principal=None if who is None else who.name,
            role=None if who is None else who.role,
            via=None if who is None else who.via,
            body=None if body is None else _clean(body, "body"),
        )

    def _roll(self, at: datetime, *, final: bool = False) -> None:
        """At a new minute (or at the end), the last minute's suppressed counts become rows."""
        minute = at.replace(second=0, microsecond=0)
        if minute == self._minute and not final:
            return
        if self._minute is not None:
            for (client, status), count in self._suppressed.items():
                detail = f"{count} further refusals in the minute from {self._minute:%H:%M} UTC, not itemised"
                record = AuditRecord(
                    self._minute, "SUPPRESSED", _clean(client, "client"), "*", "*", status, detail, count=count
                )
                self._add(record)
        self._minute, self._itemised, self._suppressed = minute, Counter(), Counter()

    def _add(self, record: AuditRecord) -> None:
        if len(self._pending) >= PENDING_MAX:
            del self._pending[0]
            self.dropped += 1
            if self.dropped % 1000 == 1:  # once per thousand: the log must not flood either
                log.error("the API audit dropped %d rows: the ledger has been unreachable too long", self.dropped)
        self._pending.append(record)

    async def flush(self, *, final: bool = False) -> None:
        """Write what is waiting (`final`: the current minute's counts too); on a ledger failure
        it waits for the next flush."""
        async with self._lock:
            self._roll(self.now(), final=final)
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await asyncio.to_thread(self.ledger.record_audit, batch)
            except LedgerError as exc:
                log.warning("the API audit waits for the ledger (%d rows): %s", len(batch), exc)
                self._pending[:0] = batch
                overflow = len(self._pending) - PENDING_MAX
                if overflow > 0:
                    del self._pending[:overflow]
                    self.dropped += overflow

    async def run(self) -> None:
        """Flush every `flush_s`, for as long as the service runs; a failure is logged, never fatal."""
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 -- the audit must outlive any one bad batch
                log.exception("the API audit failed to flush; it tries again in %g s", self.flush_s)


class AuditLayer:
    """Watches each response's status: records refusals and carried-out mutations."""

    def __init__(self, app: ASGIApp, *, recorder: AuditRecorder, auth: Authenticator) -> None:
        self.app = app
        self.recorder = recorder
        self.auth = auth

    def _who(self, scope: Scope) -> Principal | None:
        """The gate's principal; for what the guard refused before the gate ran, the same answer."""
        if IDENTITY in scope:
            principal: Principal | None = scope.get(PRINCIPAL)
            return principal
        subprotocols = list(scope.get("subprotocols", []))
        return self.auth.identify(scope["type"], Headers(scope=scope), subprotocols).principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        acting = method in MUTATING and path.startswith(("/api/", "/ui/"))
        keep_body = acting and path.startswith("/api/")  # never /ui: the login body holds a password
        body, answer = bytearray(), bytearray()
        status = 0

        async def watched_receive() -> Message:
            message = await receive()
            if keep_body and message["type"] == "http.request" and len(body) <= _LIMITS["body"]:
                body.extend(message.get("body", b""))
            return message

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status in AUDITED and len(answer) < 8192:
                answer.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, watched_receive, watched_send)
        who = self._who(scope)
        if status in AUDITED:
            detail = scope.get(DETAIL) or _detail(bytes(answer))
            self.recorder.refused(client_of(scope), method, path, status, detail, who)
        elif acting and 200 <= status < 400:
            text = bytes(body).decode("utf-8", "replace") if body else None
            self.recorder.acted(client_of(scope), method, path, status, who, text)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened = False

        async def watched_send(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept":
                opened = True
            elif message["type"] == "websocket.close" and not opened:
                opened = True  # recorded once
                reason = message.get("reason") or None
                self.recorder.refused(client_of(scope), "WS", scope["path"], 403, reason, self._who(scope))
            await send(message)

        await self.app(scope, receive, watched_send)


def _detail(answer: bytes) -> str | None:
    """The `detail` of a JSON refusal; for any other body (or one cut short), its start."""
    try:
        detail = json.loads(answer).get("detail")
    except (ValueError, AttributeError):
        return answer[: _LIMITS["detail"]].decode("utf-8", "replace") or None
    return detail if isinstance(detail, str) or detail is None else json.dumps(detail)
