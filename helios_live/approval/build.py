"""The approver the settings name: Claude with a key, the rules without one, a recorded ledger's
answers for a replay, or none (`pass_through`, which approves every proposal as it stands)."""

from __future__ import annotations

from helios_core.errors import ConfigurationError
from helios_live.approval.answer import Answer
from helios_live.approval.approver import Approver, Prompt, Reply
from helios_live.approval.context import MarketContext
from helios_live.approval.recorded import RecordedApprover
from helios_live.approval.rule_based import RuleBasedApprover
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings


class PassThrough:
    """No approver: every proposal approved as Tier 3 sized it, and the audit says so."""

    name = "pass_through"
    model_id = "none"

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        p = context.proposal
        answer = Answer(
            decision="APPROVE",
            size_multiplier=1.0,
            leverage=max(1.0, p.leverage),
            stop_loss_pct=p.stop_loss_pct,
            take_profit_pct=p.take_profit_pct,
            confidence=context.model.confidence,
            reasons=["pass-through: no approver configured"],
        )
        return Reply(answer, source="rules", model_id=self.model_id, latency_s=0.0)


def approver_for(settings: HeliosSettings, ledger: Ledger) -> Approver:
    kind = settings.approver
    if kind == "rule_based":
        return RuleBasedApprover()
    if kind == "pass_through":
        return PassThrough()
    if kind == "recorded":
        source = Ledger(settings.llm.recorded_url) if settings.llm.recorded_url else ledger
        try:
            return RecordedApprover(source.llm_answers(settings.llm.model), settings.llm.model)
        finally:
            if source is not ledger:
                source.close()
    key = settings.anthropic_api_key.get_secret_value()
    if not key:
        raise ConfigurationError("HELIOS_LLM_APPROVER=claude needs ANTHROPIC_API_KEY")
    from helios_live.approval.claude import ClaudeApprover  # the SDK only where it is used
    from helios_live.approval.cost import Budget

    return ClaudeApprover(settings.llm, key, Budget(settings.llm.call_max_usd, settings.llm.day_max_usd))
