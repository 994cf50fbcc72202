"""A baseline approver: vetoes at random, at a given rate, and approves the rest unchanged. A
backtest runs it at the real approver's own veto rate, to show whether the approver's vetoes are
better than chance. Each draw is a hash of (seed, pair, time), not of the call order, so a rerun
gives the same decisions."""

from __future__ import annotations

import hashlib

from helios_live.approval.answer import Answer
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.context import MarketContext


class RandomVeto:
    name = "random_veto"
    model_id = "random-veto"

    def __init__(self, rate: float, seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"a veto rate is in [0, 1], got {rate}")
        self.rate, self.seed = rate, seed

    def vetoes(self, pair: str, at: float) -> bool:
        digest = hashlib.sha256(f"{self.seed}\x1f{pair}\x1f{at!r}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.rate

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        p = context.proposal
        veto = self.vetoes(context.pair, context.at)
        answer = Answer(
            decision="REJECT" if veto else "APPROVE",
            size_multiplier=0.0 if veto else 1.0,
            leverage=max(1.0, p.leverage),
            stop_loss_pct=p.stop_loss_pct,
            take_profit_pct=p.take_profit_pct,
            confidence=context.model.confidence,
            reasons=[f"random veto at rate {self.rate:.3f}" if veto else "random veto: approved"],
        )
        return Reply(answer, source="rules", model_id=self.model_id, latency_s=0.0)
