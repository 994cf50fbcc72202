"""What is refused before any route runs (docs/live.md, "Request limits").

Pure ASGI rather than a Starlette `BaseHTTPMiddleware`: a refusal costs no body read, and the
WebSocket handshake passes through the same checks as a request.
"""

from __future__ import annotations

import re
from email.message import Message as MimeHeader
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios_live.api.text import has_control
from helios_live.settings import is_loopback

MAX_BODY = 64 * 1024  # the largest valid body is a few hundred bytes
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# `host[:port]` or `[ipv6][:port]`; anything else (`user@host`, a path) is no loopback name.
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.%]+)\]|(?P<name>[^:\[\]@/?#\\]+))(?::(?P<port>\d{1,5}))?")


def loopback_authority(value: str) -> bool:
    """A Host header naming this machine: `localhost`, a 127.0.0.0/8 address or `::1` (bare or
    bracketed), each with an optional port. Parsed, not prefix-matched: `127.evil.example` and
    `localhost.evil.example` are names an attacker's DNS answers for."""
    match = _AUTHORITY.fullmatch(value)
    if match is None:
        return is_loopback(value)  # a bare IPv6 address has colons of its own
    host = match["v6"] if match["v6"] is not None else match["name"]
    return (match["v6"] is None or ":" in host) and is_loopback(host) and int(match["port"] or 0) <= 65535


def loopback_origin(value: str) -> bool:
    """An Origin header (`scheme://host[:port]`) of a page served from this machine."""
    scheme, separator, authority = value.partition("://")
    return bool(separator) and scheme.lower() in ("http", "https") and loopback_authority(authority)


def _media_type(content_type: str) -> str:
    header = MimeHeader()
    header["content-type"] = content_type
    return header.get_content_type()


def _accepted(path: str, content_type: str) -> bool:
    """JSON everywhere; under /ui also a plain HTML form (the login page posts one)."""
    media = _media_type(content_type)
    return media == "application/json" or (path.startswith("/ui/") and media == "application/x-www-form-urlencoded")


class Guard:
    """Refuses, in this order: a control character in the path or the query (400); when the
    service runs without a token (development, loopback only), a Host that is not a loopback name
    (400, DNS rebinding) and an Origin that is not a loopback page on a mutating request or the
    WebSocket (403, cross-site requests); a body above `max_body` (413, by its Content-Length or
    once a streamed body passes it, reading no further); a body on a mutating request that is not
    JSON (415; a form is accepted under /ui). With credentials configured, origins are left to
    them: a page elsewhere cannot present a token without a CORS preflight, nor the session
    cookie (SameSite=Strict), nor its CSRF token."""

    def __init__(self, app: ASGIApp, *, local_only: bool, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.local_only = local_only
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is not None:
            await refuse(scope, receive, send, *refusal)
        elif scope["type"] == "http":
            await self._bounded(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        query = unquote_to_bytes(scope["query_string"].replace(b"+", b" ")).decode("utf-8", "replace")
        if has_control(scope["path"]) or has_control(query):
            return 400, "control characters are not allowed in the path or the query"
        mutating = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if self.local_only:
            if not loopback_authority(headers.get("host", "")):
                return 400, "without HELIOS_API_TOKEN this service answers only to a loopback Host"
            origin = headers.get("origin")
            if mutating and origin is not None and not loopback_origin(origin):
                return 403, "without HELIOS_API_TOKEN this service refuses requests from other origins"
        if scope["type"] == "websocket":
            return None
        length = headers.get("content-length")
        if length is not None and not re.fullmatch(r"[0-9]{1,18}", length):  # str.isdigit takes "²"
            return 400, "invalid Content-Length"
        if length is not None and int(length) > self.max_body:
            return 413, f"the body is limited to {self.max_body} bytes"
        has_body = int(length or 0) > 0 or "transfer-encoding" in headers
        if mutating and has_body and not _accepted(scope["path"], headers.get("content-type", "")):
            return 415, "a request body must be JSON (Content-Type: application/json)"
        return None

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body first, at most `max_body` of it, then hand it over whole."""
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await refuse(scope, receive, send, 413, f"the body is limited to {self.max_body} bytes")
                return
            more = message.get("more_body", False)
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if handed:
                return await receive()  # the app listens for the disconnect
            handed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def refuse(
    scope: Scope, receive: Receive, send: Send, code: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer `{"detail": ...}` with `code`, or close a WebSocket handshake (the server answers 403)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail})
    else:
        await JSONResponse({"detail": detail}, status_code=code, headers=headers)(scope, receive, send)
