"""What every approver answers with, and the prompt it is asked with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from helios_live.approval.answer import Answer
from helios_live.approval.context import MarketContext


@dataclass(frozen=True, slots=True)
class Prompt:
    """The request as sent: a versioned system text and the market context as the user turn."""

    version: str
    system: str
    user: str
    hash: str  # sha256 of version, system and user: two equal prompts, one hash


@dataclass(frozen=True, slots=True)
class Reply:
    """An approver's answer, or why there is none (`failure`, "kind: detail", with kind one of
    timeout, sdk_error, http_<status>, validation, max_tokens, refusal, budget, circuit_open,
    recorded_miss), with what the call cost."""

    answer: Answer | None
    failure: str | None = None
    source: str = "llm"  # llm, rules or recorded: where an answer came from
    model_id: str = ""
    request_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    latency_s: float | None = None
    cost_usd: float = 0.0

    def __post_init__(self) -> None:
        if (self.answer is None) == (self.failure is None):
            raise ValueError("a reply has an answer or a failure, not both or neither")

    @property
    def failure_kind(self) -> str | None:
        return None if self.failure is None else self.failure.partition(":")[0]


class Approver(Protocol):
    name: str
    model_id: str

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        """The answer to `prompt` (rendered from `context`) at `now` (epoch seconds on the
        engine's clock, for the day's budget), never an exception: a failure is a `Reply` with
        its reason."""
        ...
