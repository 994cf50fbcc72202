"""What an approver answers, as a schema the model is forced into and that is checked here: the
Messages API holds a tool's answer to the schema's shape, not to its numeric bounds, so every
bound is checked locally and a value outside one is a failure, never clamped or guessed at."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

SCHEMA_VERSION = "1"
MAX_LEVERAGE = 20.0  # an answer above this is malformed (the desk's own caps are far lower)
TOOL_NAME = "trade_decision"

# No control characters: a reason is shown and stored as text (PostgreSQL refuses a NUL).
Reason = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Answer(BaseModel):
    """APPROVE keeps the proposal, MODIFY changes it, REJECT refuses an entry. The numbers are
    the approver's view of the trade; the merge (approval.merge) only lets them lower risk."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    decision: Literal["APPROVE", "REJECT", "MODIFY"]
    size_multiplier: float = Field(ge=0, le=1)  # of the proposed position
    leverage: float = Field(ge=1, le=MAX_LEVERAGE)
    stop_loss_pct: float = Field(gt=0, le=0.5)
    take_profit_pct: float = Field(gt=0, le=1)
    confidence: float = Field(ge=0, le=1)
    reasons: list[Reason] = Field(min_length=1, max_length=5)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))


class AnswerError(ValueError):
    """An answer that is not an `Answer`: the reason names the first problems."""


def parse(raw: Any) -> Answer:
    """The tool's input (a dict) or its JSON text, validated; `AnswerError` otherwise."""
    try:
        if isinstance(raw, str | bytes):
            return Answer.model_validate_json(raw)
        return Answer.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:3])
        raise AnswerError(problems) from None


def tool() -> dict[str, Any]:
    """The tool the model is made to call (`tool_choice` names it): the schema, bounds included
    so the model knows them, with `strict` so the API holds it to the shape."""
    schema = Answer.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
    schema["additionalProperties"] = False
    return {
        "name": TOOL_NAME,
        "description": "Record your decision on the proposed trade. Call exactly once.",
        "input_schema": schema,
        "strict": True,
    }
