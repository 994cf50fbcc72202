"""Dependencies of the routers, as `Annotated` aliases."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from helios_core.errors import ConfigurationError
from helios_core.pairs import normalise_pair
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings

_bearer = HTTPBearer(auto_error=False, description="HELIOS_API_TOKEN")


def get_engine(request: Request) -> Kernel:
    engine: Kernel = request.app.state.engine
    return engine


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_settings(request: Request) -> HeliosSettings:
    settings: HeliosSettings = request.app.state.settings
    return settings


def token_ok(settings: HeliosSettings, presented: str | None) -> bool:
    expected = settings.api.token.get_secret_value()
    if not expected:
        return True  # development on loopback only: the settings refuse this anywhere else
    return presented is not None and secrets.compare_digest(presented.encode(), expected.encode())


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    if not token_ok(get_settings(request), credentials.credentials if credentials else None):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


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
Authorized = Depends(require_token)
