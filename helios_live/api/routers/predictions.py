"""The ledger's predictions and engine events, newest first, with cursor pagination."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from helios_live.api.deps import EngineDep, LedgerDep, SettingsDep, known_pair
from helios_live.api.responses import NOT_FOUND
from helios_live.api.schemas import EngineEventPage, PredictionPage, UtcTime

router = APIRouter(prefix="/api", tags=["ledger"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/predictions", responses=NOT_FOUND)
async def predictions(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    model_version: str | None = None,
    prediction: Literal["BUY", "SELL", "HOLD"] | None = None,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> PredictionPage:
    """Filter by pair, model version, predicted class and candle time [since, until)."""
    name = known_pair(pair, engine, settings) if pair else None
    try:
        page = await asyncio.to_thread(
            partial(
                ledger.predictions,
                pair=name,
                model_version=model_version,
                prediction=prediction,
                since=since,
                until=until,
                cursor=cursor,
                limit=limit,
            )
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return PredictionPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/engine-events")
async def engine_events(
    ledger: LedgerDep, kind: str | None = None, cursor: str | None = None, limit: Limit = 100
) -> EngineEventPage:
    try:
        page = await asyncio.to_thread(partial(ledger.events, kind=kind, cursor=cursor, limit=limit))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return EngineEventPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})
