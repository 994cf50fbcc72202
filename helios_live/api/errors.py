"""Error responses: the service's own errors by kind, and FastAPI's 422 made safe to encode."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from helios_core.errors import ConfigurationError, HeliosError
from helios_live.kernel.kernel import EngineStateError
from helios_live.kernel.tiers import TierError
from helios_live.ledger import LedgerError
from helios_live.trading.desk import ModeError, PositionError

_STATUS = {
    EngineStateError: status.HTTP_409_CONFLICT,
    ModeError: status.HTTP_409_CONFLICT,
    PositionError: status.HTTP_409_CONFLICT,
    TierError: status.HTTP_409_CONFLICT,
    ConfigurationError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    LedgerError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


async def helios_error(request: Request, exc: HeliosError) -> JSONResponse:
    code = next((c for kind, c in _STATUS.items() if isinstance(exc, kind)), status.HTTP_500_INTERNAL_SERVER_ERROR)
    return JSONResponse({"detail": str(exc), "code": type(exc).__name__}, status_code=code)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, except that the input it echoes may hold `NaN` or `Infinity` (Python's
    JSON parser reads both) or a lone surrogate (`"\\ud800"`): neither can be encoded as strict
    JSON in UTF-8, and the stock handler fails with a 500."""
    detail = _encodable(jsonable_encoder(exc.errors()))
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _encodable(value: Any) -> Any:
    """Non-finite floats as the strings the client wrote (`"NaN"`, `"Infinity"`, `"-Infinity"`),
    lone surrogates as their escapes."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value
