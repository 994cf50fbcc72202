"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from helios_live.api.text import Text


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset (e.g. Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # year 1 at +01:00 or year 9999 at -01:00: no such UTC time
        raise ValueError("is out of range once on UTC") from exc


# A query's time bound: aware, and on UTC, as the ledger stores it.
UtcTime = Annotated[datetime, AfterValidator(_utc)]


class EngineConfig(BaseModel):
    """Body of POST /api/autonomous-engine/start; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    trading_mode: Literal["PAPER", "LIVE"] = "PAPER"
    pairs: list[Annotated[Text, Field(max_length=32)]] | None = Field(default=None, min_length=1, max_length=50)
    auto_trading_enabled: bool = False


class EmergencyStop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="manual", max_length=500)


class Ack(BaseModel):
    success: bool = True
    message: str
    status: dict[str, Any]


class StepOut(BaseModel):
    step: str
    approved: bool
    reason: str


class PredictionOut(BaseModel):
    id: int
    pair: str
    candle_ts: datetime
    decided_at: datetime
    model_version: str
    feature_set_version: str
    feature_hash: str
    prediction: str
    probabilities: dict[str, float]
    confidence: float
    entry_price: float
    outcome_due: datetime
    actual_outcome: str | None
    outcome_return: float | None
    correct: bool | None
    latency_ms: float | None
    steps: list[StepOut]


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    next_cursor: str | None


class EngineEventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    pair: str | None
    detail: dict[str, Any]


class EngineEventPage(BaseModel):
    items: list[EngineEventOut]
    next_cursor: str | None


class ModeChange(BaseModel):
    """Body of POST /api/mode; LIVE needs `confirmation` to be the phrase I_CONFIRM_LIVE_TRADING."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["PAPER", "SHADOW", "LIVE"]
    confirmation: Text | None = Field(default=None, max_length=100)
    reason: Text = Field(default="", max_length=500)


class Mode(BaseModel):
    mode: str
    live_order_placement: bool
    exchange_credentials: bool
    switch_ms: float | None = None


class Page(BaseModel):
    """A page of ledger rows, newest first; pass `next_cursor` back as `cursor` for the next."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class LlmDecisionOut(BaseModel):
    """Tier 4's decision on one prediction's proposal (GET /api/llm/decisions)."""

    id: int
    prediction_id: int
    context_id: int
    pair: str
    candle_ts: datetime
    decided_at: datetime
    approver: str
    source: str  # llm, rules, recorded or failsafe
    verdict: str
    prompt_version: str
    prompt_hash: str
    context_hash: str
    replay_key: str
    model_id: str
    request_id: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    latency_ms: float | None
    cost_usd: float
    answer: dict[str, Any] | None
    clamps: list[str]
    failure: str | None


class LlmDecisionDetail(LlmDecisionOut):
    """One decision with the market context its approver read, as the prompt carried it."""

    context: dict[str, Any]


class LlmDecisionPage(BaseModel):
    items: list[LlmDecisionOut]
    next_cursor: str | None


class OrderJournalOut(BaseModel):
    """An order as journalled before its request was sent, and where it stands (GET /api/orders/journal)."""

    id: int
    client_order_id: str
    position_key: str
    pair: str
    side: str
    purpose: str
    mode: str
    order_type: str
    quantity: float
    price: float | None
    time_in_force: str | None
    request: dict[str, Any]  # verb, path and body as sent: never headers, keys or signatures
    opening: dict[str, Any] | None
    reason: str
    created_at: datetime
    status: str
    venue_order_id: str | None
    filled_quantity: float
    average_price: float | None
    fee: float
    updated_at: datetime


class OrderTransitionOut(BaseModel):
    id: int
    client_order_id: str
    status: str
    at: datetime
    venue_order_id: str | None
    filled_quantity: float
    average_price: float | None
    fee: float
    detail: str


class OrderJournalDetail(OrderJournalOut):
    """One journalled order with every transition it went through, in order."""

    transitions: list[OrderTransitionOut]


class OrderJournalPage(BaseModel):
    items: list[OrderJournalOut]
    next_cursor: str | None


class ReconciliationOut(BaseModel):
    """One comparison of the exchange's account with the ledger (GET /api/reconciliations)."""

    id: int
    at: datetime
    ok: bool
    mismatches: list[dict[str, Any]]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str


class ReconciliationPage(BaseModel):
    items: list[ReconciliationOut]
    next_cursor: str | None


class Reconciliation(BaseModel):
    """The outcome of POST /api/reconciliations: VALR's account against the ledger, now."""

    id: int
    ok: bool
    mismatches: list[dict[str, Any]]
    entries_blocked: str | None


class Acknowledgement(BaseModel):
    """Body of POST /api/reconciliations/{id}/acknowledge: who settles it, and how."""

    model_config = ConfigDict(extra="forbid")

    by: Text = Field(min_length=1, max_length=64)
    note: Text = Field(default="", max_length=500)


class Acknowledged(BaseModel):
    id: int
    entries_blocked: str | None  # still blocked by something else, or None
