"""The API's audit, for the operator: refusals and operator actions, newest first (api/audit.py)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status

from helios_live.api.audit import AuditRecorder
from helios_live.api.deps import Authorized, LedgerDep
from helios_live.api.schemas import Page
from helios_live.api.text import Text

router = APIRouter(prefix="/api", tags=["audit"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/audit", dependencies=[Authorized])
async def audit(
    request: Request,
    ledger: LedgerDep,
    kind: Literal["REFUSED", "SUPPRESSED", "ACTION"] | None = None,
    principal: Annotated[Text | None, Query(max_length=64)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    """Refused requests (`REFUSED`; `SUPPRESSED`: how many more of one client and minute were
    refused, not itemised) and carried-out operator actions (`ACTION`), each with its client,
    method, path, status, detail, principal and time; what waits to be written is written first."""
    recorder: AuditRecorder = request.app.state.audit
    await recorder.flush()
    read = partial(ledger.audit, kind=kind, principal=principal, cursor=cursor, limit=limit)
    try:
        page = await asyncio.to_thread(read)
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return Page(items=page.items, next_cursor=page.next_cursor)
