"""Liveness for load balancers and people: 200 when healthy, 503 with the failing checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from helios_live.api.deps import EngineDep
from helios_live.kernel import status as report

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(engine: EngineDep, response: Response) -> dict[str, Any]:
    body = await report.health(engine)
    if not body["healthy"]:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return body
