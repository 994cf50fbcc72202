"""The surveillance tier's history and state (docs/surveillance.md): security events, deviation
checks, liquidation patterns and vault snapshots, newest first with cursor pagination. Every
bound is validated (422 outside it) and every filter is applied before the limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from helios_live.api.deps import EngineDep, LedgerDep
from helios_live.ledger.records import Page

router = APIRouter(prefix="/api/security", tags=["security"])
Hours = Annotated[int, Query(ge=1, le=168)]
Asset = Annotated[str, Query(pattern=r"^[A-Za-z0-9]{1,32}$")]
Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
EventType = Literal[
    "oracle_deviation", "trade_deviation", "price_deviation", "liquidation_cascade", "vault_anomaly", "market_anomaly"
]
Pattern = Literal["liquidation_cascade", "liquidations"]


class SecurityEventOut(BaseModel):
    id: int
    event_id: str
    type: str
    venue: str
    asset: str
    severity: str
    peak: str
    score: float
    indicators: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    tx_hash: str | None
    ended: datetime | None


class DeviationOut(BaseModel):
    id: int
    ts: datetime
    venue: str
    asset: str
    kind: str
    price: float | None
    reference: float | None
    deviation_pct: float | None
    severity: str | None
    onset: datetime | None
    duration_s: float | None
    sustained: bool
    risk: float
    used: int
    stale: int
    bad: int


class PatternOut(BaseModel):
    id: int
    ts: datetime
    venue: str
    asset: str
    pattern: str
    count: int
    longs: int
    shorts: int
    notional: float
    direction: str
    severity: str | None
    score: float
    first: datetime | None


class VaultOut(BaseModel):
    id: int
    ts: datetime
    venue: str
    vault: str
    equity: float
    pnl: float
    equity_change_pct: float | None
    pnl_change: float | None
    z_equity: float | None
    z_pnl: float | None
    score: float | None
    severity: str | None


class EventPage(BaseModel):
    items: list[SecurityEventOut]
    next_cursor: str | None


class DeviationPage(BaseModel):
    items: list[DeviationOut]
    next_cursor: str | None


class PatternPage(BaseModel):
    items: list[PatternOut]
    next_cursor: str | None


class VaultPage(BaseModel):
    items: list[VaultOut]
    next_cursor: str | None


class Dashboard(BaseModel):
    """The current state: per venue and asset the newest deviation check, each vault's newest
    snapshot, the active events, and (when this process runs the monitors) their counters."""

    venues: dict[str, dict[str, DeviationOut]]
    vaults: list[VaultOut]
    active_events: list[SecurityEventOut]
    monitors: dict[str, Any] | None


async def _page(call: Any) -> Page:
    try:
        page: Page = await asyncio.to_thread(call)
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return page


def _since(hours: int) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


@router.get("/events")
async def events(
    ledger: LedgerDep,
    severity: Severity | None = None,
    type: EventType | None = None,
    asset: Asset | None = None,
    hours: Hours = 24,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    """Events seen in the last `hours`, filtered by severity, type and asset before the limit."""
    call = partial(
        ledger.security_events,
        severity=severity,
        type=type,
        asset=asset,
        since=_since(hours),
        cursor=cursor,
        limit=limit,
    )
    page = await _page(call)
    return EventPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/oracle-deviations/history")
async def deviations(
    ledger: LedgerDep,
    asset: Asset | None = None,
    hours: Hours = 24,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeviationPage:
    """Deviation checks (oracle and pair prices) of the last `hours`."""
    page = await _page(partial(ledger.oracle_deviations, asset=asset, since=_since(hours), cursor=cursor, limit=limit))
    return DeviationPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/liquidation-patterns")
async def patterns(
    ledger: LedgerDep,
    type: Pattern | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PatternPage:
    """Cascade checks that saw qualifying liquidations; `type=liquidation_cascade` for cascades only."""
    page = await _page(partial(ledger.liquidation_patterns, pattern=type, cursor=cursor, limit=limit))
    return PatternPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/vault/history")
async def vault_history(
    ledger: LedgerDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> VaultPage:
    page = await _page(partial(ledger.vault_snapshots, cursor=cursor, limit=limit))
    return VaultPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/dashboard")
async def dashboard(ledger: LedgerDep, engine: EngineDep) -> Dashboard:
    state = await asyncio.to_thread(ledger.surveillance_state)
    venues: dict[str, dict[str, Any]] = {}
    for row in state["deviations"]:
        venues.setdefault(row["venue"], {})[row["asset"]] = row
    monitors = engine.surveillance.status() if engine.surveillance is not None else None
    return Dashboard.model_validate(
        {"venues": venues, "vaults": state["vaults"], "active_events": state["events"], "monitors": monitors}
    )
