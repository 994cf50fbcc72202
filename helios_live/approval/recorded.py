"""The approver that replays: answers a past run's Claude gave, looked up by the hash of what
decides an answer (model id, prompt version, schema version, context), so a backtest of that
period makes no call and costs nothing. A context it has no answer for is a miss: the failure
policy decides, and the miss is counted."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from helios_live.approval.answer import SCHEMA_VERSION, AnswerError, parse
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.context import MarketContext


def replay_key(model_id: str, prompt_version: str, context_json: str, schema_version: str = SCHEMA_VERSION) -> str:
    text = "\x1f".join((model_id, prompt_version, schema_version, context_json))
    return hashlib.sha256(text.encode()).hexdigest()


class RecordedApprover:
    name = "recorded"

    def __init__(self, answers: Mapping[str, str], model_id: str) -> None:
        """`answers`: replay key -> answer JSON (`Ledger.llm_answers`), loaded once."""
        self.answers = dict(answers)
        self.model_id = model_id
        self.hits = 0
        self.misses = 0

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        key = replay_key(self.model_id, prompt.version, context.to_json())
        raw = self.answers.get(key)
        if raw is None:
            self.misses += 1
            return Reply(None, f"recorded_miss: no recorded answer for key {key[:12]}", "recorded", self.model_id)
        try:
            answer = parse(raw)
        except AnswerError as exc:
            self.misses += 1
            return Reply(None, f"validation: recorded answer {key[:12]}: {exc}", "recorded", self.model_id)
        self.hits += 1
        return Reply(answer, source="recorded", model_id=self.model_id, latency_s=0.0)
