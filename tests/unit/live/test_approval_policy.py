"""The failure policy and the circuit breaker of Tier 4, through the approval step itself."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from helios_core.decision import Approved, Context, Denied, Prediction, Verdict
from helios_core.risk.sizing import SizingConfig, size
from helios_live.approval.answer import Answer
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.context import Market, MarketContext, Model, Portfolio, Proposal
from helios_live.approval.policy import CircuitBreaker
from helios_live.approval.step import Approval
from helios_live.ledger.records import LlmDecisionRecord

pytestmark = pytest.mark.anyio

PROPOSAL = size(0.72, 0.03, "LOW", 0.0, SizingConfig())
GOOD = Answer(
    decision="MODIFY",
    size_multiplier=0.5,
    leverage=1.0,
    stop_loss_pct=0.01,
    take_profit_pct=0.02,
    confidence=0.7,
    reasons=["half size"],
)


class Scripted:
    """Answers (or fails, or hangs) as told, one reply per call."""

    name = "scripted"
    model_id = "scripted-1"

    def __init__(self, *replies: Reply | float | Exception) -> None:
        self.replies = list(replies)
        self.calls = 0

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        self.calls += 1
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, float):
            await asyncio.sleep(reply)
            return Reply(GOOD, model_id=self.model_id)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def market(context: Context) -> MarketContext:
    return MarketContext(
        context.pair,
        context.now,
        Market(context.price, 0.01, 0.02, None, "SIDEWAYS", "LOW", 0.03, "NORMAL", None),
        Model("BUY", 0.72, 0.18, 0.1, 0.72, (), None),
        Proposal("LONG", 0.1, 2.0, 0.06, 0.12, 4.0),
        Portfolio(100_000.0, 100_000.0, 0.0, 0.0, 0, 0.0),
        {},
        "DECOUPLED",
    )


def context(now: float = 1_700_000_000.0, price: float = 100.0) -> Context:
    prediction = Prediction("BUY", (0.72, 0.18, 0.1), 0.72, "h")
    c = Context("BTCZAR", prediction, "m1", price, False, True, now=now)
    c.sizing = PROPOSAL
    return c


def resize_to(sizing: object) -> object:
    def resize(c: Context) -> Verdict:
        c.sizing = sizing  # type: ignore[assignment]
        return Approved("sizing", "again")

    return resize


def step(approver: Scripted, prices: dict[str, float] | None = None, **kwargs: object) -> Approval:
    events: list[tuple[str, dict[str, object]]] = []

    async def record(kind: str, pair: str | None = None, **detail: object) -> None:
        events.append((kind, detail))

    s = Approval(
        approver,
        market,
        kwargs.pop("resize", resize_to(PROPOSAL)),  # type: ignore[arg-type]
        lambda pair: (prices or {}).get(pair, 100.0),
        record=record,
        **kwargs,  # type: ignore[arg-type]
    )
    s.events = events  # type: ignore[attr-defined]
    return s


def audit(c: Context) -> LlmDecisionRecord:
    assert isinstance(c.approval, LlmDecisionRecord)
    return c.approval


async def test_a_valid_answer_is_merged_and_audited() -> None:
    c = context()
    verdict = await step(Scripted(Reply(GOOD, model_id="scripted-1", request_id="req_1", cost_usd=0.001)))(c)
    assert isinstance(verdict, Approved) and verdict.reason.startswith("MODIFY by scripted: half size")
    assert c.sizing is not None and c.sizing.fraction == pytest.approx(PROPOSAL.fraction / 2)
    record = audit(c)
    assert (record.source, record.verdict, record.request_id, record.failure) == ("llm", "MODIFY", "req_1", None)
    assert record.answer == GOOD.to_json() and record.prompt_version and len(record.replay_key) == 64


@pytest.mark.parametrize(
    "failure", ["timeout: slow", "sdk_error: boom", "validation: size", "max_tokens: cut", "refusal: no", "http_529: x"]
)
async def test_reject_policy_denies_an_entry_on_any_failure(failure: str) -> None:
    c = context()
    s = step(Scripted(Reply(None, failure)))
    verdict = await s(c)
    assert isinstance(verdict, Denied) and "failsafe" in verdict.reason and failure in verdict.reason
    assert (audit(c).source, audit(c).verdict, audit(c).failure) == ("failsafe", "REJECT", failure)
    assert c.sizing == PROPOSAL
    assert s.events == [("LLM_FAILSAFE_REJECT", {"failure": failure, "policy": "reject"})]  # type: ignore[attr-defined]


async def test_neural_only_policy_proceeds_on_tiers_3_and_5() -> None:
    c = context()
    s = step(Scripted(Reply(None, "timeout: slow")), policy="neural_only")
    verdict = await s(c)
    assert isinstance(verdict, Approved) and "neural_only" in verdict.reason
    assert c.sizing == PROPOSAL and audit(c).verdict == "NEURAL_ONLY"
    assert s.events[0][0] == "LLM_TIMEOUT_FALLBACK"  # type: ignore[attr-defined]


async def test_the_deadline_is_the_steps_own() -> None:
    c = context()
    verdict = await step(Scripted(5.0), deadline_s=0.05)(c)
    assert isinstance(verdict, Denied) and "timeout: no answer within 0.05 s" in verdict.reason


async def test_an_approver_that_raises_is_a_failure_never_an_approval() -> None:
    c = context()
    verdict = await step(Scripted(RuntimeError("bug")), policy="reject")(c)
    assert isinstance(verdict, Denied) and "sdk_error: RuntimeError: bug" in verdict.reason


async def test_reject_answer_denies() -> None:
    c = context()
    verdict = await step(Scripted(Reply(GOOD.model_copy(update={"decision": "REJECT"}))))(c)
    assert isinstance(verdict, Denied) and verdict.reason.startswith("REJECT by scripted")


async def test_the_circuit_opens_after_failures_in_a_row_then_half_opens() -> None:
    approver = Scripted(Reply(None, "http_500: down"))
    s = step(approver, breaker=CircuitBreaker(3, 60.0))
    for i in range(3):
        await s(context(now=1000.0 + i))
    assert s.breaker.state == "open" and approver.calls == 3
    c = context(now=1010.0)
    await s(c)
    assert approver.calls == 3 and audit(c).failure is not None and audit(c).failure.startswith("circuit_open")
    approver.replies = [Reply(GOOD)]
    c = context(now=1003.0 + 60.0)  # the cool-down is over: one call goes through, and succeeds
    assert (await s(c)).approved and approver.calls == 4
    assert s.breaker.state == "closed" and s.breaker.in_a_row == 0


async def test_a_failed_half_open_call_opens_the_circuit_again() -> None:
    breaker = CircuitBreaker(2, 10.0)
    for now in (0.0, 1.0):
        assert breaker.allow(now)
        breaker.record("timeout", now)
    assert not breaker.allow(5.0)
    assert breaker.allow(11.0) and breaker.state == "half_open"
    assert not breaker.allow(11.5)  # one trial at a time
    breaker.record("timeout", 12.0)
    assert breaker.state == "open" and not breaker.allow(15.0) and breaker.allow(22.0)


def test_budget_and_replay_misses_do_not_open_the_circuit() -> None:
    breaker = CircuitBreaker(1, 10.0)
    for kind in ("budget", "recorded_miss", "circuit_open"):
        assert breaker.allow(0.0)
        breaker.record(kind, 0.0)
    assert breaker.state == "closed"


async def test_a_price_move_while_waiting_resizes_and_the_answer_still_only_lowers() -> None:
    smaller = replace(PROPOSAL, fraction=PROPOSAL.fraction / 10)
    c = context(price=100.0)
    s = step(Scripted(Reply(GOOD)), prices={"BTCZAR": 101.0}, resize=resize_to(smaller), tolerance=0.005)
    verdict = await s(c)
    assert verdict.approved and "price moved +1.00% while waiting: re-sized" in verdict.reason
    assert c.price == 101.0 and c.sizing is not None
    assert c.sizing.fraction == pytest.approx(smaller.fraction / 2)
    assert any("re-sized" in clamp for clamp in audit(c).clamps)


async def test_a_move_within_the_tolerance_keeps_the_sizing() -> None:
    c = context(price=100.0)
    verdict = await step(Scripted(Reply(GOOD)), prices={"BTCZAR": 100.4}, resize=resize_to(None))(c)
    assert verdict.approved and c.price == 100.0 and c.sizing is not None


async def test_a_resize_that_denies_denies() -> None:
    def deny(c: Context) -> Verdict:
        return Denied("sizing", "no edge left")

    c = context(price=100.0)
    verdict = await step(Scripted(Reply(GOOD)), prices={"BTCZAR": 90.0}, resize=deny)(c)
    assert isinstance(verdict, Denied) and "no edge left" in verdict.reason and audit(c).verdict == "REJECT"
