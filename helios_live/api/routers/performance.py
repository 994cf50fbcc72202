"""Performance and the go-live criteria of a ledger over REST, from the marts the analytics
build publishes as Parquet (helios_live/data/analytics.py): no DuckDB, no dbt. Before the first
build, or for a ledger the marts do not hold, the answer is empty and `detail` says why."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from helios_live.data.analytics import Analytics, AnalyticsCache

router = APIRouter(prefix="/api", tags=["analytics"])
PERIODS = ("7d", "30d", "all")
VERDICT = "go_live"  # the criterion that sums up the others


class PerformanceRow(BaseModel):
    """One row of mart_performance; None where the mart has no finite figure."""

    ledger: str
    period: str
    window_days: int | None = None  # None: the whole history
    as_of: date | None = None
    days: int | None = None
    total_return: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    var_95: float | None = None
    var_99: float | None = None
    max_drawdown: float | None = None
    equity: float | None = None
    trades: int | None = None
    win_rate: float | None = None
    profit_factor: float | None = None
    net_pnl: float | None = None


class CriterionRow(BaseModel):
    """One row of mart_go_live."""

    ledger: str
    window_start: date | None = None
    window_end: date | None = None
    position: int | None = None
    criterion: str
    value: float | None = None
    threshold: float | None = None
    comparison: str | None = None
    observations: int | None = None
    observed: str | None = None
    passed: bool | None = None
    note: str | None = None


class GoLiveOut(BaseModel):
    passed: bool | None  # None: no verdict in the marts
    window_start: date | None
    window_end: date | None
    criteria: list[CriterionRow]  # every criterion but the verdict, in the mart's order


class PerformanceOut(BaseModel):
    ledger: str
    built_at: datetime | None
    detail: str | None  # why there is nothing: no analytics built, or the ledger not in the marts
    ledgers: list[str]
    performance: list[PerformanceRow]
    go_live: GoLiveOut


def analytics_cache(request: Request) -> AnalyticsCache:
    cache: AnalyticsCache = request.app.state.analytics
    return cache


def ledgers(analytics: Analytics) -> list[str]:
    """Every ledger either mart holds."""
    named = {str(r["ledger"]) for mart in ("mart_performance", "mart_go_live") for r in analytics.rows(mart)}
    return sorted(named)


def _period(row: dict[str, Any]) -> tuple[int, str]:
    period = str(row.get("period"))
    return (PERIODS.index(period) if period in PERIODS else len(PERIODS), period)


def response(analytics: Analytics, ledger: str) -> PerformanceOut:
    available = ledgers(analytics)
    detail = analytics.detail
    if detail is None and ledger not in available:
        detail = f"no analytics for ledger {ledger!r}; the marts hold {available}"
    performance = sorted(analytics.rows("mart_performance", ledger), key=_period)
    rows = sorted(analytics.rows("mart_go_live", ledger), key=lambda r: (r.get("position") is None, r.get("position")))
    verdict = next((r for r in rows if r.get("criterion") == VERDICT), None)
    window = verdict or (rows[0] if rows else {})
    return PerformanceOut(
        ledger=ledger,
        built_at=analytics.built_at,
        detail=detail,
        ledgers=available,
        performance=[PerformanceRow.model_validate(r) for r in performance],
        go_live=GoLiveOut(
            passed=verdict.get("passed") if verdict is not None else None,
            window_start=window.get("window_start"),
            window_end=window.get("window_end"),
            criteria=[CriterionRow.model_validate(r) for r in rows if r is not verdict],
        ),
    )


@router.get("/performance")
async def performance(
    request: Request, ledger: Annotated[str, Query(min_length=1, max_length=200)] = "live"
) -> PerformanceOut:
    """The ledger's returns and risk over 7 and 30 days and its whole history, and how it stands
    against the go-live criteria (`live`: this service's own; `demo`; `backtest.<run>...`)."""
    analytics = await asyncio.to_thread(analytics_cache(request).read)  # a stat per mart; a read when one changed
    return response(analytics, ledger)
