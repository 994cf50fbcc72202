"""Who a request comes from: a bearer token, the UI's session cookie, or, in development mode,
the local operator (docs/live.md, "Security")."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.datastructures import Headers

from helios_live.api.principals import DEVELOPER, Principal
from helios_live.api.sessions import COOKIE, Session, SessionError, Sessions
from helios_live.api.users import User, load_users, verify
from helios_live.settings import HeliosSettings

BEARER_REQUIRED = "a valid bearer token or session is required"
BEARER_INVALID = "a valid bearer token is required"
SUBPROTOCOL = "helios.bearer"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a request's credentials came to: a principal, or why there is none (`problem`, the
    401's detail, when credentials were presented and refused)."""

    principal: Principal | None
    session: Session | None = None
    problem: str = BEARER_REQUIRED


class Authenticator:
    def __init__(self, settings: HeliosSettings, users: dict[str, User], sessions: Sessions) -> None:
        self.development = not settings.authenticated
        self._tokens = (
            (settings.api.token.get_secret_value(), Principal("operator-token", "operator", "token")),
            (settings.api.viewer_token.get_secret_value(), Principal("viewer-token", "viewer", "token")),
        )
        self.users = users
        self.sessions = sessions

    @classmethod
    def from_settings(cls, settings: HeliosSettings) -> Authenticator:
        """ConfigurationError when the users file is unsafe or malformed."""
        users = load_users(settings.ui.users_file) if settings.ui.users_file else {}
        # Without a configured secret, sessions last until the service restarts.
        secret = settings.ui.session_secret.get_secret_value().encode() or secrets.token_bytes(32)
        return cls(settings, users, Sessions(secret, settings.ui.session_hours * 3600))

    def bearer(self, presented: str) -> Principal | None:
        found = None
        for token, principal in self._tokens:  # every token compared: the time says nothing of which matched
            if token and hmac.compare_digest(presented.encode(), token.encode()):
                found = principal
        return found

    def session(self, cookie: str) -> tuple[Principal, Session]:
        """SessionError when the cookie is not a live session of a user the file still holds."""
        session = self.sessions.read(cookie)
        user = self.users.get(session.name)
        if user is None:
            raise SessionError("the session's user is no longer configured: log in again at /ui/login")
        return Principal(user.name, user.role, "session"), session

    def login(self, name: str, password: str) -> Principal | None:
        return verify(self.users, name, password)

    def identify(self, scope_type: str, headers: Headers, subprotocols: list[str]) -> Identity:
        """The caller of a request or WebSocket handshake. A bearer token (header, or for a
        WebSocket the `helios.bearer` subprotocol pair) comes before the cookie; one that is
        presented and wrong is refused even beside a valid cookie."""
        if self.development:
            return Identity(DEVELOPER)
        presented = _bearer(headers) or (_offered(subprotocols) if scope_type == "websocket" else None)
        if presented is not None:
            return Identity(self.bearer(presented), problem=BEARER_INVALID)
        if "authorization" in headers:
            return Identity(None, problem=BEARER_INVALID)
        cookie = _cookie(headers)
        if cookie is None:
            return Identity(None)
        try:
            principal, session = self.session(cookie)
        except SessionError as exc:
            return Identity(None, problem=str(exc))
        return Identity(principal, session)


def _bearer(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _offered(subprotocols: list[str]) -> str | None:
    if SUBPROTOCOL in subprotocols[:-1]:
        return subprotocols[subprotocols.index(SUBPROTOCOL) + 1]
    return None


def _cookie(headers: Headers) -> str | None:
    for header in headers.getlist("cookie"):
        for part in header.split(";"):
            name, separator, value = part.strip().partition("=")
            if separator and name == COOKIE:
                return value.strip('"')
    return None
