"""The UI's session cookie and its CSRF token, signed with HMAC-SHA256 (stdlib, no state to store).

A cookie is `payload.signature`, the payload `name|issued|expires|nonce` in URL-safe base64. The
role is not in it: it is read from the users file on every request, so a user demoted or removed
loses what the cookie granted. The CSRF token is the HMAC of the session's nonce, so it belongs
to one session and a page that cannot read the cookie cannot compute it. A logout revokes the
nonce until the cookie would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "helios_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    expires: float  # epoch seconds
    nonce: str


class SessionError(Exception):
    """A cookie that is forged, malformed, expired or revoked; the message is the client's detail."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, secret: bytes, lifetime_s: float, now: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_s
        self.now = now
        self._revoked: dict[str, float] = {}  # nonce -> when its cookie expires

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}|{data}".encode(), hashlib.sha256).digest())

    def issue(self, name: str) -> tuple[str, Session]:
        """A new cookie value for `name`, and its session."""
        issued = self.now()
        session = Session(name, issued + self.lifetime_s, secrets.token_urlsafe(16))
        payload = _b64(f"{name}|{issued:.0f}|{session.expires:.0f}|{session.nonce}".encode())
        return f"{payload}.{self._mac('session', payload)}", session

    def read(self, cookie: str) -> Session:
        """The session a cookie carries; SessionError when it is not one this service issued and
        still honours."""
        payload, _, signature = cookie.partition(".")
        if not hmac.compare_digest(signature.encode(), self._mac("session", payload).encode()):
            raise SessionError("the session cookie is not valid: log in again at /ui/login")
        try:
            name, _, expires, nonce = _unb64(payload).decode().split("|")
            session = Session(name, float(expires), nonce)
        except ValueError as exc:  # signed by us, so never expected; still no 500
            raise SessionError("the session cookie is not valid: log in again at /ui/login") from exc
        if session.expires <= self.now():
            raise SessionError("the session has expired: log in again at /ui/login")
        if session.nonce in self._revoked:
            raise SessionError("the session was logged out: log in again at /ui/login")
        return session

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token(session).encode())

    def revoke(self, session: Session) -> None:
        now = self.now()
        self._revoked = {nonce: expires for nonce, expires in self._revoked.items() if expires > now}
        self._revoked[session.nonce] = session.expires
