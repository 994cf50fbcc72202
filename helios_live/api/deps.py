"""Dependencies of the routers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from helios_core.errors import ConfigurationError
from helios_core.pairs import normalise_pair
from helios_live.api.auth import BEARER_REQUIRED, Identity
from helios_live.api.gate import IDENTITY, client_of
from helios_live.api.guards import loopback_authority
from helios_live.api.principals import Principal
from helios_live.api.sessions import COOKIE
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings, is_loopback

# Declared for the OpenAPI schema (its security schemes); the gate (gate.py) reads the credentials.
_bearer = HTTPBearer(auto_error=False, description="HELIOS_API_TOKEN (operator) or HELIOS_API_VIEWER_TOKEN")
_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="the UI's session (POST /ui/login)")


def get_engine(request: Request) -> Kernel:
    engine: Kernel = request.app.state.engine
    return engine


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_settings(request: Request) -> HeliosSettings:
    settings: HeliosSettings = request.app.state.settings
    return settings


def principal_of(connection: HTTPConnection) -> Principal:
    """The caller the gate identified (development mode: the local operator); 401 without one."""
    identity: Identity | None = connection.scope.get(IDENTITY)
    if identity is None or identity.principal is None:
        problem = identity.problem if identity is not None else BEARER_REQUIRED
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, problem, headers={"WWW-Authenticate": "Bearer"})
    return identity.principal


def require_viewer(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    return principal_of(request)


def require_operator(principal: Annotated[Principal, Depends(require_viewer)]) -> Principal:
    if not principal.operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this action needs the operator role; {principal.name!r} is a {principal.role}"
        )
    return principal


FORWARDING = ("forwarded", "x-forwarded-for", "x-real-ip")


def local(request: Request) -> bool:
    """A caller on this machine, asking for this machine: a loopback peer, no proxy's forwarding
    header (a proxy on this host makes every caller look local) and a loopback Host (a browser
    page elsewhere rebinding its name to 127.0.0.1 sends its own)."""
    headers = request.headers
    return (
        is_loopback(client_of(request.scope))
        and not any(name in headers for name in FORWARDING)
        and loopback_authority(headers.get("host", ""))
    )


def require_local_or_viewer(request: Request) -> Principal | None:
    """Open to a client on this machine (a probe, a local Prometheus); anyone else needs a principal."""
    if local(request):
        identity: Identity | None = request.scope.get(IDENTITY)
        return identity.principal if identity is not None else None
    return principal_of(request)


def known_pair(pair: str, engine: Kernel, settings: HeliosSettings) -> str:
    """The pair's canonical name, or 404 when this service does not trade it."""
    try:
        name = normalise_pair(pair)
    except ConfigurationError:
        name = pair
    if name not in set(settings.live.pairs) | set(engine.pairs):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown pair {pair!r}; this service trades {list(engine.pairs)}"
        )
    return name


EngineDep = Annotated[Kernel, Depends(get_engine)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
SettingsDep = Annotated[HeliosSettings, Depends(get_settings)]
Viewer = Annotated[Principal, Depends(require_viewer)]
"""Any authenticated principal (401 without one)."""
Operator = Annotated[Principal, Depends(require_operator)]
"""A principal with the operator role (401 without one, 403 for a viewer)."""
Authorized = Depends(require_operator)
"""`Operator` for a route's `dependencies=[...]`, where the principal itself is not needed."""
LocalOrViewer = Depends(require_local_or_viewer)
