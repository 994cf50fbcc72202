"""Who may pass, before any route runs: the caller is identified (auth.py) and put in the scope,
its rate is limited per client address and per principal, every route under /api refuses an
unauthenticated caller (401), and a mutation authenticated by the session cookie needs its
CSRF token (403). The roles are the routes' business (deps.py `Operator`).

Pure ASGI like guards.py: the WebSocket handshake passes the same gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios_live.api.auth import Authenticator, Identity
from helios_live.api.guards import SAFE_METHODS, refuse
from helios_live.api.ratelimit import RateLimiter, retry_after
from helios_live.api.sessions import CSRF_FIELD, CSRF_HEADER, Session

PRINCIPAL = "helios.principal"  # scope keys the routes and the audit read
IDENTITY = "helios.identity"
LOGIN = "/ui/login"
FORM = "application/x-www-form-urlencoded"
CSRF_MISSING = (
    "a request authenticated by the session cookie needs the session's CSRF token"
    " in the X-CSRF-Token header or the csrf_token form field"
)


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def protected(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class Gate:
    def __init__(self, app: ASGIApp, *, auth: Authenticator, limiter: RateLimiter, login_limiter: RateLimiter) -> None:
        self.app = app
        self.auth = auth
        self.limiter = limiter
        self.login_limiter = login_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        identity = self.auth.identify(scope["type"], headers, list(scope.get("subprotocols", [])))
        scope[IDENTITY], scope[PRINCIPAL] = identity, identity.principal
        limited = self._limited(scope, identity)
        if limited is not None:
            await refuse(scope, receive, send, 429, limited[1], {"Retry-After": limited[0]})
            return
        if protected(scope["path"]) and identity.principal is None and not _preflight(scope, headers):
            await refuse(scope, receive, send, 401, identity.problem, {"WWW-Authenticate": "Bearer"})
            return
        if identity.session is not None:
            checked = await self._csrf(scope, headers, identity.session, receive)
            if checked is None:
                await refuse(scope, receive, send, 403, self._csrf_detail(scope))
                return
            receive = checked
        await self.app(scope, receive, send)

    def _limited(self, scope: Scope, identity: Identity) -> tuple[str, str] | None:
        client = client_of(scope)
        keys = [f"client:{client}"] + ([f"principal:{identity.principal.name}"] if identity.principal else [])
        wait = self.limiter.take(*keys)
        if wait is not None:
            per_min = int(self.limiter.capacity)
            return retry_after(wait), f"too many requests: at most {per_min} a minute per client and per principal"
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == LOGIN:
            wait = self.login_limiter.take(f"client:{client}")
            if wait is not None:
                per_min = int(self.login_limiter.capacity)
                return retry_after(wait), f"too many login attempts: at most {per_min} a minute per client"
        return None

    def _csrf_detail(self, scope: Scope) -> str:
        if scope["type"] == "websocket":
            return "a WebSocket authenticated by the session cookie must come from a page of this service"
        return CSRF_MISSING

    async def _csrf(self, scope: Scope, headers: Headers, session: Session, receive: Receive) -> Receive | None:
        """`receive` to go on with when the request may pass (the body replayed if it had to be
        read for the form field), None when its CSRF token is missing or wrong."""
        if scope["type"] == "websocket":
            # Browsers send cookies on cross-site WebSocket handshakes and no preflight guards
            # them: the page must be ours. SameSite=Strict already keeps the cookie off those.
            origin, host = headers.get("origin"), headers.get("host", "")
            return receive if origin is None or origin.partition("://")[2] == host else None
        if scope["method"] in SAFE_METHODS or scope["path"] == LOGIN:
            return receive
        presented = headers.get(CSRF_HEADER)
        if presented is None and headers.get("content-type", "").split(";")[0].strip().lower() == FORM:
            body, receive = await _buffered(receive)
            fields = parse_qs(body.decode("utf-8", "replace"))
            presented = fields.get(CSRF_FIELD, [None])[0]
        return receive if self.auth.sessions.csrf_ok(session, presented) else None


def _preflight(scope: Scope, headers: Headers) -> bool:
    """A CORS preflight, which browsers send without credentials: CORS (or a 405) answers it."""
    return scope["type"] == "http" and scope["method"] == "OPTIONS" and "access-control-request-method" in headers


async def _buffered(receive: Receive) -> tuple[bytes, Callable[[], Awaitable[Message]]]:
    """The whole body (the guard has bounded it), and a `receive` that hands it over again."""
    chunks = []
    message = await receive()
    while message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
        message = await receive()
    body = b"".join(chunks)
    # The client may have gone away mid-body: the app then hears of it first.
    first: Message = (
        {"type": "http.request", "body": body, "more_body": False} if message["type"] == "http.request" else message
    )
    handed = False

    async def replay() -> Message:
        nonlocal handed
        if handed:
            return await receive()
        handed = True
        return first

    return body, replay
