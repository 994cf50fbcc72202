"""The refusals every route can answer, for its OpenAPI `responses` (docs/live.md, "Security")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Refusal(BaseModel):
    detail: str


def _refusal(description: str) -> dict[str, Any]:
    return {"model": Refusal, "description": description}


AUTHENTICATION: dict[int | str, dict[str, Any]] = {
    400: _refusal("control characters in the path or the query, or (development mode) a Host that is not loopback"),
    401: _refusal("no principal: a missing or wrong bearer token, a forged, expired or logged-out session"),
    429: _refusal("past the rate limit of this client or principal; `Retry-After` says when to come back"),
}
REFUSALS: dict[int | str, dict[str, Any]] = {
    **AUTHENTICATION,
    403: _refusal("a viewer calling an operator action, or a session's mutation without its CSRF token"),
    413: _refusal("a body above 64 KiB"),
    415: _refusal("a body that is not JSON"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _refusal("a pair this service does not trade, or no such row")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _refusal("the command does not fit the engine's state or mode")}
BOTH: dict[int | str, dict[str, Any]] = {**NOT_FOUND, **CONFLICT}
