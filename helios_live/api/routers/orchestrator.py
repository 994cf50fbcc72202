"""The per-tier switches, at the design's path (section 50.2.4): what each tier does when off,
and which can never be switched off (helios_live.kernel.tiers)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict

from helios_live.api.deps import EngineDep, Operator
from helios_live.kernel.tiers import TIERS

router = APIRouter(prefix="/api/orchestrator/system", tags=["engine"])


class TierSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class TierState(BaseModel):
    id: str
    name: str
    enabled: bool
    switchable: bool
    when_off: str  # what switching it off does, or why it cannot be


@router.get("/tiers")
async def tiers(engine: EngineDep) -> list[TierState]:
    """Each tier: on or off, whether it can be switched off, and what switching it off does."""
    return [TierState.model_validate(t) for t in engine.tiers.state()]


@router.put(
    "/tiers/{tier_id}",
    responses={404: {"description": "no such tier"}, 409: {"description": "this tier cannot be switched off"}},
)
async def switch_tier(tier_id: str, body: TierSwitch, engine: EngineDep, who: Operator) -> list[TierState]:
    """Switch one tier on or off; recorded as a TIER_SWITCHED engine event (with who) and kept
    across restarts."""
    if tier_id not in TIERS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown tier {tier_id!r}; the tiers are {', '.join(TIERS)}")
    await engine.set_tier(tier_id, body.enabled, by=who.name)
    return await tiers(engine)
