"""Tier 4, the approval step: the market context to the approver within a deadline, its answer
merged into Tier 3's proposal (it may only lower risk), the failure policy when there is no valid
answer, a re-size when the price moved while it waited, and the audit record of all of it left
on the context for the ledger."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from helios_core.decision import Approved, Context, Denied, Verdict
from helios_core.timeframes import as_datetime
from helios_live.approval.answer import Answer
from helios_live.approval.approver import Approver, Reply
from helios_live.approval.context import MarketContext, digest
from helios_live.approval.merge import Merged, merge, riskier
from helios_live.approval.policy import CircuitBreaker
from helios_live.approval.prompt import render
from helios_live.approval.recorded import replay_key
from helios_live.ledger.records import LlmDecisionRecord
from helios_live.settings import APPROVAL_GRACE_S

Record = Callable[..., Awaitable[None]]


class Approval:
    name = "approval"

    def __init__(
        self,
        approver: Approver,
        view: Callable[[Context], MarketContext],
        resize: Callable[[Context], Verdict],
        price: Callable[[str], float],
        *,
        policy: str = "reject",
        breaker: CircuitBreaker | None = None,
        deadline_s: float = 8.0,
        tolerance: float = 0.005,
        record: Record | None = None,
        perf: Callable[[], float] = time.perf_counter,
        switched_on: Callable[[], bool] = lambda: True,
    ) -> None:
        """`view` builds a decision's market context, `resize` runs Tier 3 again on the context
        as it stands, `price` is a pair's latest price, `record` writes an engine event."""
        self.approver, self.view, self.resize, self.price = approver, view, resize, price
        self.policy = policy
        self.breaker = breaker or CircuitBreaker(3, 300.0)
        self.deadline_s, self.tolerance = deadline_s, tolerance
        self.record, self.perf, self.switched_on = record, perf, switched_on
        self.verdicts: Counter[str] = Counter()  # APPROVE / MODIFY / REJECT / NEURAL_ONLY
        self.failures: Counter[str] = Counter()  # by kind
        self.cost_usd = 0.0

    @property
    def remote(self) -> bool:
        """Whether an answer may take a while (a call out): the kernel then runs the decision
        beside the pair's worker; an approver that answers at once runs inline, as in a backtest."""
        return bool(getattr(self.approver, "remote", False))

    async def __call__(self, context: Context) -> Verdict:
        proposal = context.sizing
        if proposal is None:
            return Denied(self.name, "no sizing to approve")
        market = self.view(context)
        text = market.to_json()
        prompt = render(text)
        started = self.perf()
        reply = await self._ask(prompt, market, context.now)
        if reply.failure is not None:
            reply = replace(reply, failure=_printable(reply.failure))
        merged: Merged | None = None
        if reply.answer is not None:
            merged = merge(proposal, reply.answer)
            broken = riskier(merged.sizing, proposal)
            if broken:  # the merge's own guarantee, checked on every decision
                reply = replace(reply, answer=None, failure=f"merge: the merged trade is riskier in {broken}")
                merged = None
        verdict, final, clamps = self._verdict(context, reply, merged)
        if verdict.approved:
            verdict, clamps = self._moved(context, reply.answer, verdict, clamps)
            final = final if verdict.approved else "REJECT"
        context.approval = LlmDecisionRecord(
            approver=self.approver.name,
            source="failsafe" if reply.failure else reply.source,
            verdict=final,
            decided_at=as_datetime(context.now),
            context=text,
            context_hash=digest(text),
            replay_key=replay_key(self.approver.model_id, prompt.version, text),
            prompt_version=prompt.version,
            prompt_hash=prompt.hash,
            model_id=reply.model_id or self.approver.model_id,
            request_id=reply.request_id,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cache_creation_tokens=reply.cache_creation_tokens,
            cache_read_tokens=reply.cache_read_tokens,
            latency_ms=(self.perf() - started) * 1e3 if reply.latency_s is None else reply.latency_s * 1e3,
            cost_usd=reply.cost_usd,
            answer=reply.answer.to_json() if reply.answer is not None else None,
            clamps=clamps,
            failure=reply.failure,
        )
        self.verdicts[final] += 1
        self.cost_usd += reply.cost_usd
        if reply.failure is not None:
            self.failures[reply.failure_kind or "unknown"] += 1
            # Switched off, every entry takes the policy: the TIER_SWITCHED event says so once.
            if self.record is not None and reply.failure_kind != "switched_off":
                kind = "LLM_TIMEOUT_FALLBACK" if self.policy == "neural_only" else "LLM_FAILSAFE_REJECT"
                await self.record(kind, pair=context.pair, failure=reply.failure, policy=self.policy)
        return verdict

    async def _ask(self, prompt: Any, market: MarketContext, now: float) -> Reply:
        if not self.switched_on():  # the operator's switch: the policy, and nothing asked or spent
            return Reply(None, "switched_off: Tier 4 is switched off by the operator")
        if not self.breaker.allow(now):
            return Reply(None, f"circuit_open: {self.breaker.in_a_row} failures in a row; cooling down")
        try:
            # The approver keeps the deadline itself (and says why it failed); this is the backstop.
            async with asyncio.timeout(self.deadline_s + APPROVAL_GRACE_S):
                reply = await self.approver.ask(prompt, market, now)
        except TimeoutError:
            reply = Reply(None, f"timeout: no answer within {self.deadline_s:g} s", model_id=self.approver.model_id)
        except Exception as exc:  # an approver's bug is a failure with the policy, never an approval
            reply = Reply(None, f"sdk_error: {type(exc).__name__}: {exc}", model_id=self.approver.model_id)
        self.breaker.record(reply.failure_kind, now)
        return reply

    def _verdict(self, context: Context, reply: Reply, merged: Merged | None) -> tuple[Verdict, str, tuple[str, ...]]:
        if merged is None:
            if self.policy == "neural_only":
                reason = f"failsafe ({reply.failure}): proceeding on Tiers 3 and 5 alone (neural_only)"
                return Approved(self.name, reason), "NEURAL_ONLY", ()
            return Denied(self.name, f"failsafe ({reply.failure}): entry rejected by the failure policy"), "REJECT", ()
        assert reply.answer is not None  # noqa: S101 -- merged only from an answer
        why = "; ".join(reply.answer.reasons)
        if merged.verdict == "REJECT":
            return Denied(self.name, f"REJECT by {self.approver.name}: {why}"), "REJECT", merged.clamps
        context.sizing = merged.sizing
        detail = f"{merged.verdict} by {self.approver.name}: {why}"
        if merged.clamps:
            detail += f" (clamped: {'; '.join(merged.clamps)})"
        return Approved(self.name, detail), merged.verdict, merged.clamps

    def _moved(
        self, context: Context, answer: Answer | None, verdict: Verdict, clamps: tuple[str, ...]
    ) -> tuple[Verdict, tuple[str, ...]]:
        """Tier 3 again when the price moved beyond the tolerance while the approver thought:
        the answer (none under `neural_only`) is merged into the new proposal, so it still only
        lowers risk."""
        latest = self.price(context.pair)
        if not (math.isfinite(latest) and context.price > 0):
            return verdict, clamps
        moved = latest / context.price - 1
        if abs(moved) <= self.tolerance:
            return verdict, clamps
        context.price = latest
        resized = self.resize(context)
        note = f"price moved {moved:+.2%} while waiting: re-sized"
        if not resized.approved:
            return Denied(self.name, f"{note}; {resized.reason}"), (*clamps, note)
        assert context.sizing is not None  # noqa: S101 -- a sizing that approved leaves one
        if answer is None:
            return Approved(self.name, f"{verdict.reason}; {note}"), (*clamps, note)
        merged = merge(context.sizing, answer)
        if merged.verdict == "REJECT":
            return Denied(self.name, f"{note}; nothing left to trade"), (*clamps, note, *merged.clamps)
        context.sizing = merged.sizing
        return Approved(self.name, f"{verdict.reason}; {note}"), (*clamps, note, *merged.clamps)

    def snapshot(self, now: float) -> dict[str, Any]:
        """For the engine's status and metrics; `budget` is the day's spend (Claude only)."""
        budget = getattr(self.approver, "budget", None)
        return {
            "approver": self.approver.name,
            "model": self.approver.model_id,
            "policy": self.policy,
            "circuit": self.breaker.snapshot(),
            "verdicts": dict(self.verdicts),
            "failures": dict(self.failures),
            "cost_usd": self.cost_usd,
            "budget": budget.snapshot(now) if budget is not None else None,
        }


def _printable(text: str | None) -> str | None:
    """A failure's text as the ledger stores it: an error body may carry control characters."""
    return None if text is None else "".join(c if c.isprintable() else " " for c in text)[:2000]
