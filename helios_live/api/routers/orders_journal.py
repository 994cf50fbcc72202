"""The order journal: every order's intent as written before its request was sent, where it
stands, and its transitions; and the reconciliation runs of the exchange against the ledger.
Newest first with cursor pagination, as for predictions."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from helios_live.api.deps import EngineDep, LedgerDep, SettingsDep, known_pair
from helios_live.api.responses import NOT_FOUND
from helios_live.api.schemas import OrderJournalDetail, OrderJournalPage, ReconciliationPage
from helios_live.ledger.records import Page

router = APIRouter(prefix="/api", tags=["orders"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Status = Literal["NEW", "ACCEPTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "FAILED", "EXPIRED", "UNKNOWN"]


async def _read(read: partial[Page]) -> Page:
    try:
        return await asyncio.to_thread(read)
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("/orders/journal", responses=NOT_FOUND)
async def journal(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> OrderJournalPage:
    """Journalled orders, filtered by pair and by the status they stand at."""
    name = known_pair(pair, engine, settings) if pair else None
    page = await _read(partial(ledger.order_journal, pair=name, status=status_, cursor=cursor, limit=limit))
    return OrderJournalPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/orders/journal/{client_order_id}", responses=NOT_FOUND)
async def journal_entry(client_order_id: str, ledger: LedgerDep) -> OrderJournalDetail:
    item = await asyncio.to_thread(ledger.order_journal_item, client_order_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no journalled order {client_order_id!r}")
    return OrderJournalDetail.model_validate(item)


@router.get("/reconciliations")
async def reconciliations(ledger: LedgerDep, cursor: str | None = None, limit: Limit = 100) -> ReconciliationPage:
    """Reconciliation runs: ok, or the mismatches found and whether an operator acknowledged them."""
    page = await _read(partial(ledger.reconciliations, cursor=cursor, limit=limit))
    return ReconciliationPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})
