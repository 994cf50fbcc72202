"""Health for load balancers, orchestrators and people.

/health: every check, with the reason of each that fails; 503 when any does.
/health/ready: the same verdict, for a readiness probe (route no traffic to it; do not restart).
/health/live: 200 while the process serves and its engine has not given up; 503 only when a
restart would help (a liveness probe)."""

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


@router.get("/health/ready")
async def ready(engine: EngineDep, response: Response) -> dict[str, Any]:
    body = await report.health(engine)
    if not body["healthy"]:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"ready": body["healthy"], "reasons": body["reasons"]}


@router.get("/health/live")
async def live(engine: EngineDep, response: Response) -> dict[str, Any]:
    if engine.gave_up:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"alive": not engine.gave_up, "engine": engine.status}
