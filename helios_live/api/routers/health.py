"""Health for load balancers, orchestrators and people.

/health: every check, with the reason of each that fails; 503 when any does.
/health/ready: the same verdict, for a readiness probe (route no traffic to it; do not restart).
/health/live: 200 while the process serves and its engine has not given up; 503 only when a
restart would help (a liveness probe).

Open without credentials to a client on this machine (a probe, a local Prometheus); from any
other address they need a principal, a viewer's is enough (docs/live.md, "Security")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from helios_live.api.deps import EngineDep, LocalOrViewer
from helios_live.api.responses import AUTHENTICATION
from helios_live.kernel import status as report

router = APIRouter(tags=["health"], dependencies=[LocalOrViewer], responses=AUTHENTICATION)
LOCAL = "Open to loopback clients without credentials; any other client needs a principal (a viewer's will do)."


@router.get("/health", description=f"Every check, with the reason of each that fails; 503 when any does. {LOCAL}")
async def health(engine: EngineDep, response: Response) -> dict[str, Any]:
    body = await report.health(engine)
    if not body["healthy"]:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return body


@router.get("/health/ready", description=f"The same verdict, for a readiness probe. {LOCAL}")
async def ready(engine: EngineDep, response: Response) -> dict[str, Any]:
    body = await report.health(engine)
    if not body["healthy"]:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"ready": body["healthy"], "reasons": body["reasons"]}


@router.get("/health/live", description=f"200 while the process serves and its engine has not given up. {LOCAL}")
async def live(engine: EngineDep, response: Response) -> dict[str, Any]:
    if engine.gave_up:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"alive": not engine.gave_up, "engine": engine.status}
