"""Trading: the mode, positions (with a manual close), orders, fills, risk decisions and the
portfolio. Pages are newest first with cursor pagination, as for predictions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from helios_core.trading.enums import TradingMode
from helios_core.trading.position import gross_pnl
from helios_live.api.deps import Authorized, EngineDep, LedgerDep, Operator, SettingsDep, known_pair
from helios_live.api.responses import BOTH, CONFLICT, NOT_FOUND
from helios_live.api.schemas import (
    Acknowledged,
    Acknowledgement,
    Mode,
    ModeChange,
    Page,
    Reconciliation,
    UtcTime,
)
from helios_live.ledger import Page as LedgerPage
from helios_live.trading.desk import ModeError

router = APIRouter(prefix="/api", tags=["trading"])
Limit = Annotated[int, Query(ge=1, le=1000)]
PositionId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a BIGINT: a bigger one must not reach the database


async def _page(read: Callable[..., LedgerPage], **filters: Any) -> Page:
    try:
        page = await asyncio.to_thread(partial(read, **filters))
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return Page(items=page.items, next_cursor=page.next_cursor)


@router.get("/mode")
async def get_mode(engine: EngineDep, settings: SettingsDep) -> Mode:
    return Mode(
        mode=engine.mode, live_order_placement=settings.valr.credentials, exchange_credentials=settings.valr.credentials
    )


@router.post("/mode", responses=CONFLICT)
async def set_mode(body: ModeChange, engine: EngineDep, settings: SettingsDep, who: Operator) -> Mode:
    """Switch between PAPER, SHADOW and LIVE. SHADOW needs VALR credentials; LIVE needs the
    confirmation phrase, an authenticated operator (an unauthenticated development service cannot
    go live), credentials that pass VALR's read-only check, and no open positions; 409 says
    which is missing (docs/live-trading.md)."""
    if body.mode == "LIVE" and who.via == "loopback":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "switching to LIVE needs HELIOS_API_TOKEN (or HELIOS_UI_USERS_FILE): requests must be authenticated",
        )
    started = time.perf_counter()
    try:
        mode = await engine.set_mode(TradingMode(body.mode), body.confirmation, body.reason)
    except ModeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Mode(
        mode=mode,
        live_order_placement=settings.valr.credentials,
        exchange_credentials=settings.valr.credentials,
        switch_ms=round((time.perf_counter() - started) * 1000, 3),
    )


@router.get("/positions", responses=NOT_FOUND)
async def positions(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    status_: Annotated[Literal["OPEN", "CLOSED"] | None, Query(alias="status")] = None,
    pair: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    """Positions with their P&L: realised once closed, unrealised at the latest price while open."""
    name = known_pair(pair, engine, settings) if pair else None
    page = await _page(ledger.positions, status=status_, pair=name, cursor=cursor, limit=limit)
    return Page(items=[_with_unrealised(engine, item) for item in page.items], next_cursor=page.next_cursor)


@router.get("/positions/{position_id}", responses=NOT_FOUND)
async def position(position_id: PositionId, ledger: LedgerDep, engine: EngineDep) -> dict[str, Any]:
    item = await asyncio.to_thread(ledger.position, position_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no position {position_id}")
    return _with_unrealised(engine, item)


@router.post("/positions/{position_id}/close", dependencies=[Authorized], responses=BOTH)
async def close_position(position_id: PositionId, ledger: LedgerDep, engine: EngineDep) -> dict[str, Any]:
    """Close one open position at the market now (409 when it is not open)."""
    item = await asyncio.to_thread(ledger.position, position_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no position {position_id}")
    if item["key"] not in engine.desk.account.positions:
        raise HTTPException(status.HTTP_409_CONFLICT, f"position {position_id} is {item['status']}, not open")
    execution = await engine.close_position(item["key"])
    closed = execution.position
    return {
        "id": position_id,
        "key": closed.key,
        "status": closed.status,
        "close_reason": closed.close_reason,
        "exit_price": closed.exit_price,
        "realised_pnl": closed.realised_pnl,
    }


@router.get("/orders", responses=NOT_FOUND)
async def orders(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    position_key: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    name = known_pair(pair, engine, settings) if pair else None
    return await _page(ledger.orders, pair=name, position_key=position_key, cursor=cursor, limit=limit)


@router.get("/fills", responses=NOT_FOUND)
async def fills(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    name = known_pair(pair, engine, settings) if pair else None
    return await _page(ledger.fills, pair=name, cursor=cursor, limit=limit)


@router.get("/risk-decisions", responses=NOT_FOUND)
async def risk_decisions(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    approved: bool | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    """Tier 3's sizing for each signal, with Tier 5's portfolio check where it got that far."""
    name = known_pair(pair, engine, settings) if pair else None
    return await _page(ledger.risk_decisions, pair=name, approved=approved, cursor=cursor, limit=limit)


@router.get("/portfolio")
async def portfolio(engine: EngineDep) -> dict[str, Any]:
    """The account now: cash, margin, equity, peak, drawdown, today's P&L, and the limits."""
    desk = engine.desk
    limits = desk.config.limits
    return {
        "mode": engine.mode,
        **desk.account.figures(),
        "capital": desk.config.capital,
        "limits": {name: getattr(limits, name) for name in limits.__dataclass_fields__},
        "fills": dict(engine.desk.fills),
    }


@router.get("/portfolio/snapshots")
async def snapshots(
    ledger: LedgerDep, since: UtcTime | None = None, cursor: str | None = None, limit: Limit = 100
) -> Page:
    return await _page(ledger.snapshots, since=since, cursor=cursor, limit=limit)


@router.get("/portfolio/allocation")
async def allocation(engine: EngineDep) -> dict[str, Any]:
    """Tier 5 allocation now: the targets in force (with what computed them and any fallback),
    the weights held (gross exposure over equity), and the latest rebalance."""
    return engine.allocation.status()


@router.get("/portfolio/targets")
async def targets(ledger: LedgerDep, cursor: str | None = None, limit: Limit = 100) -> Page:
    """Every set of targets computed, newest first, each with the inputs it used."""
    return await _page(ledger.allocation_targets, cursor=cursor, limit=limit)


@router.get("/portfolio/rebalances")
async def rebalances(
    ledger: LedgerDep,
    reason: Literal["DAILY", "WEEKLY", "EMERGENCY"] | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page:
    """Every rebalance (`rebalancing_events`): targets, weights before and after, orders, reason."""
    return await _page(ledger.rebalances, reason=reason, cursor=cursor, limit=limit)


def _with_unrealised(engine: EngineDep, item: dict[str, Any]) -> dict[str, Any]:
    position = engine.desk.account.positions.get(item["key"])
    if position is None:
        return {**item, "unrealised_pnl": None, "mark": None}
    mark = engine.desk.account.marks.get(position.pair, position.entry_price)
    return {**item, "unrealised_pnl": gross_pnl(position, mark), "mark": mark}


@router.post("/reconciliations", dependencies=[Authorized], responses=CONFLICT)
async def reconcile(engine: EngineDep) -> Reconciliation:
    """Reconcile VALR's account with the ledger now (LIVE runs it on its own every
    HELIOS_VALR_RECONCILE_S); 409 outside LIVE or when VALR cannot be asked."""
    try:
        result = await engine.reconcile()
    except ModeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Reconciliation(**result, entries_blocked=engine.venue.blocking() or None)


@router.post("/reconciliations/{rec_id}/acknowledge", dependencies=[Authorized], responses=NOT_FOUND)
async def acknowledge_reconciliation(rec_id: PositionId, body: Acknowledgement, engine: EngineDep) -> Acknowledged:
    """An operator settles a reconciliation's mismatches with VALR: they are not raised again,
    and the entries they blocked may open again (exits never stopped). 404 when there is no
    such reconciliation or it was acknowledged already."""
    if not await engine.acknowledge_reconciliation(rec_id, body.by, body.note):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no unacknowledged reconciliation {rec_id}")
    return Acknowledged(id=rec_id, entries_blocked=engine.venue.blocking() or None)
