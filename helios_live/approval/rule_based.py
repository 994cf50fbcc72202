"""The approver without a key: deterministic rules on the context's regimes, the default when no
`ANTHROPIC_API_KEY` is set. It never calls out and never fails; like every approver's, its
answer only reaches the trade through the merge, which lets it lower risk and nothing else."""

from __future__ import annotations

from helios_live.approval.answer import Answer
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.context import MarketContext

MIN_SCORED = 5
POOR_HIT_RATE = 0.35


class RuleBasedApprover:
    name = "rule_based"
    model_id = "rules-v1"

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        return Reply(decide(context), source="rules", model_id=self.model_id, latency_s=0.0)


def decide(context: MarketContext) -> Answer:
    market, proposal = context.market, context.proposal
    rejects: list[str] = []
    if market.volatility == "EXTREME":
        rejects.append("volatility regime EXTREME")
    if context.correlation_regime == "CRISIS" and context.portfolio.open_positions > 0:
        rejects.append("correlation regime CRISIS with positions open: they would move together")
    if rejects:
        return _answer("REJECT", 0.0, proposal.leverage, context, rejects)
    multiplier, leverage, reasons = 1.0, proposal.leverage, []
    against = (proposal.side, market.trend) in (("LONG", "BEARISH"), ("SHORT", "BULLISH"))
    if against:
        multiplier *= 0.5
        reasons.append(f"{proposal.side} against a {market.trend} trend: half size")
    if market.volatility == "HIGH":
        multiplier *= 0.5
        leverage = 1.0
        reasons.append("volatility regime HIGH: half size at 1x")
    if market.liquidity == "THIN":
        multiplier *= 0.5
        reasons.append("thin liquidity in the last hour: half size")
    hit_rate = context.model.hit_rate
    if hit_rate is not None and len(context.model.recent) >= MIN_SCORED and hit_rate < POOR_HIT_RATE:
        multiplier *= 0.5
        reasons.append(f"the model's hit rate {hit_rate:.0%} is poor: half size")
    if not reasons:
        return _answer("APPROVE", 1.0, leverage, context, ["no regime rule objects"])
    return _answer("MODIFY", multiplier, leverage, context, reasons)


def _answer(decision: str, multiplier: float, leverage: float, context: MarketContext, reasons: list[str]) -> Answer:
    proposal = context.proposal
    return Answer(
        decision=decision,  # type: ignore[arg-type]
        size_multiplier=multiplier,
        leverage=max(1.0, leverage),
        stop_loss_pct=proposal.stop_loss_pct,
        take_profit_pct=proposal.take_profit_pct,
        confidence=context.model.confidence,
        reasons=reasons[:5],
    )
