"""Every alert delivery, newest first (docs/alerts.md): the alert or its recovery, the channel,
how many tries it took and how it ended."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from helios_live.api.deps import LedgerDep
from helios_live.api.schemas import Page
from helios_live.api.text import Text

router = APIRouter(prefix="/api", tags=["alerts"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/alerts")
async def alerts(
    ledger: LedgerDep,
    rule: Annotated[Text | None, Query(max_length=48)] = None,
    channel: Annotated[Text | None, Query(max_length=32)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    """Filters `rule` (`emergency_stop`, `stream_down`, ...) and `channel` (`webhook`, `slack`, ...)."""
    read = partial(ledger.alert_deliveries, rule=rule, channel=channel, cursor=cursor, limit=limit)
    try:
        page = await asyncio.to_thread(read)
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return Page(items=page.items, next_cursor=page.next_cursor)
