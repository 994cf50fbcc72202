"""Tier 4's audit: each decision's approval with what it cost, what it answered and the market
context it read; newest first with cursor pagination, as for predictions."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from helios_live.api.deps import EngineDep, LedgerDep, SettingsDep, known_pair
from helios_live.api.responses import NOT_FOUND
from helios_live.api.schemas import LlmDecisionDetail, LlmDecisionPage

router = APIRouter(prefix="/api/llm", tags=["llm"])
Limit = Annotated[int, Query(ge=1, le=1000)]
DecisionId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a BIGINT: a bigger one must not reach the database


@router.get("/decisions", responses=NOT_FOUND)
async def decisions(
    ledger: LedgerDep,
    engine: EngineDep,
    settings: SettingsDep,
    pair: str | None = None,
    verdict: Literal["APPROVE", "MODIFY", "REJECT", "NEURAL_ONLY"] | None = None,
    source: Literal["llm", "rules", "recorded", "failsafe"] | None = None,
    approver: str | None = None,
    failed: bool | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> LlmDecisionPage:
    """Filter by pair, merged verdict, source of the answer, approver, and whether the failure
    policy decided (`failed`)."""
    name = known_pair(pair, engine, settings) if pair else None
    try:
        page = await asyncio.to_thread(
            partial(
                ledger.llm_decisions,
                pair=name,
                verdict=verdict,
                source=source,
                approver=approver,
                failed=failed,
                cursor=cursor,
                limit=limit,
            )
        )
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return LlmDecisionPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/decisions/{decision_id}", responses=NOT_FOUND)
async def decision(decision_id: DecisionId, ledger: LedgerDep) -> LlmDecisionDetail:
    item = await asyncio.to_thread(ledger.llm_decision, decision_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no LLM decision {decision_id}")
    return LlmDecisionDetail.model_validate(item)
