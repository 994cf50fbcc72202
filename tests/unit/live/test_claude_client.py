"""The Claude approver against a fake Messages API on loopback, through the real SDK: every
outcome a `Reply` of its own failure kind, retries within one deadline, tokens and cost from the
price table, and the budget refusing before anything is sent."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from helios_live.approval.answer import TOOL_NAME
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.claude import ClaudeApprover, request_tool
from helios_live.approval.context import Market, MarketContext, Model, Portfolio, Proposal
from helios_live.approval.cost import PRICES, Budget, UnknownModelError, cost, estimate_input_tokens, price
from helios_live.approval.prompt import SYSTEM, render
from helios_live.settings import LlmSettings
from tests.anthropic_support import (
    VALID_ANSWER,
    FakeAnthropic,
    delay,
    max_tokens,
    message,
    raw_json_body,
    refusal,
    status,
    text_only,
    tool,
)

KEY = "sk-ant-fake-key-for-tests"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0

CONTEXT = MarketContext(
    "BTCZAR",
    NOW,
    Market(1_650_000.0, 0.018, 0.041, 0.094, "BULLISH", "MEDIUM", 0.031, "NORMAL", 1.1),
    Model("BUY", 0.68, 0.12, 0.2, 0.68, (("BUY", "BUY"),), 0.6),
    Proposal("LONG", 0.08, 2.0, 0.03, 0.06, 4.0),
    Portfolio(100_000.0, 82_000.0, 0.021, -350.0, 1, 0.18),
    {"ETHZAR": 0.62},
    "COUPLED",
)
PROMPT = render(CONTEXT.to_json())


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def approver(server: FakeAnthropic, budget: Budget | None = None, **llm: Any) -> ClaudeApprover:
    settings = LlmSettings(base_url=server.base_url, **{"deadline_s": 2.0, **llm})
    return ClaudeApprover(settings, KEY, budget or Budget(0.05, 5.0))


def ask(claude: ClaudeApprover, *nows: float, prompt: Prompt = PROMPT) -> list[Reply]:
    async def run() -> list[Reply]:
        try:
            return [await claude.ask(prompt, CONTEXT, now) for now in nows]
        finally:
            await claude.aclose()

    return asyncio.run(run())


def ask_one(claude: ClaudeApprover, now: float = NOW) -> Reply:
    return ask(claude, now)[0]


def answer_with(**changes: Any) -> dict[str, Any]:
    answer = {**VALID_ANSWER, **changes}
    return {k: v for k, v in answer.items() if v is not None}


# --- answers ---------------------------------------------------------------------------------


def test_a_valid_tool_answer_with_tokens_and_cost_from_the_price_table(server: FakeAnthropic) -> None:
    usage = {
        "input_tokens": 1200,
        "output_tokens": 80,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 400,
    }
    server.script(tool(answer_with(decision="MODIFY", size_multiplier=0.5), usage=usage))
    claude = approver(server)
    reply = ask_one(claude)
    assert reply.failure is None and reply.answer is not None
    assert reply.answer.decision == "MODIFY" and reply.answer.size_multiplier == 0.5
    assert reply.source == "llm" and reply.model_id == "claude-sonnet-4-5" == claude.model_id
    assert reply.request_id == "req_fake_1"
    assert (reply.input_tokens, reply.output_tokens) == (1200, 80)
    assert (reply.cache_creation_tokens, reply.cache_read_tokens) == (100, 400)
    # sonnet 4.5: $3 in, $15 out, $3.75 cache write, $0.30 cache read, a million tokens
    assert reply.cost_usd == pytest.approx((1200 * 3 + 80 * 15 + 100 * 3.75 + 400 * 0.30) / 1e6, abs=1e-12)
    assert reply.latency_s is not None and 0 < reply.latency_s < 2
    assert claude.budget.spent_today(NOW) == pytest.approx(reply.cost_usd, abs=1e-12)  # settled at the actual cost
    assert server.count == 1


def test_usage_without_cache_fields_counts_them_as_zero(server: FakeAnthropic) -> None:
    server.script(tool(usage={"input_tokens": 1000, "output_tokens": 50}))
    reply = ask_one(approver(server))
    assert reply.answer is not None
    assert (reply.cache_creation_tokens, reply.cache_read_tokens) == (0, 0)
    assert reply.cost_usd == pytest.approx((1000 * 3 + 50 * 15) / 1e6, abs=1e-12)


def test_the_request_carries_the_forced_tool_and_the_settings(server: FakeAnthropic) -> None:
    ask_one(approver(server, model="claude-haiku-4-5", max_tokens=300, deadline_s=1.5))
    (request,) = server.requests
    body = request.body
    assert request.method == "POST" and request.path == "/v1/messages"
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 300
    assert body["system"] == SYSTEM
    assert body["messages"] == [{"role": "user", "content": PROMPT.user}]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True}
    assert body["tools"] == [json.loads(json.dumps(request_tool()))]
    (sent,) = body["tools"]
    assert sent["name"] == TOOL_NAME and sent["strict"] is True
    assert sent["input_schema"]["additionalProperties"] is False
    # a strict schema may carry no bounds: they move into the descriptions, where the model reads them
    bounds = {"minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "maxItems"}
    properties = sent["input_schema"]["properties"]
    assert not any(bounds & set(p) | bounds & set(p.get("items", {})) for p in properties.values())
    assert "maximum: 1" in properties["size_multiplier"]["description"]
    assert "temperature" not in body  # the API version the 2.x SDK sends refuses sampling parameters
    assert KEY in request.headers.get("authorization", "") + request.headers.get("x-api-key", "")
    assert request.headers["x-stainless-retry-count"] == "0"
    assert float(request.headers["x-stainless-timeout"]) <= 1.5  # the SDK's timeout inside the deadline


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        (tool(answer_with(reasons=None)), "reasons"),  # a field missing
        (tool(answer_with(comment="extra")), "comment"),  # a field not in the schema
        (tool(answer_with(size_multiplier=2.0)), "size_multiplier"),
        (tool(answer_with(size_multiplier=-1)), "size_multiplier"),
        (tool(answer_with(decision="BUY_MORE")), "decision"),
        (tool(answer_with(size_multiplier="0.5")), "size_multiplier"),  # a string where a number goes
        (tool(name="other_tool"), "other_tool"),
        (text_only(), "no tool call"),
        (raw_json_body("{}"), "no tool call"),
    ],
)
def test_an_answer_off_the_schema_is_a_validation_failure(server: FakeAnthropic, behaviour: Any, problem: str) -> None:
    server.script(behaviour)
    reply = ask_one(approver(server))
    assert reply.answer is None
    assert reply.failure_kind == "validation", reply.failure
    assert problem in (reply.failure or "")
    assert server.count == 1  # a bad answer is not asked again


def test_two_tool_calls_are_a_validation_failure(server: FakeAnthropic) -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": TOOL_NAME, "input": VALID_ANSWER}
    server.script(message([block, {**block, "id": "toolu_2"}], "tool_use"))
    reply = ask_one(approver(server))
    assert reply.failure_kind == "validation" and "2 tool calls" in (reply.failure or "")


def test_nan_in_the_body_is_never_an_answer(server: FakeAnthropic) -> None:
    # Python's JSON reader (the SDK's) takes a literal NaN as a float: the answer's own check refuses it.
    body = json.dumps(json.loads(tool(answer_with(size_multiplier=0.5)).body.decode())).replace("0.5", "NaN")
    assert "NaN" in body
    server.script(raw_json_body(body))
    reply = ask_one(approver(server))
    assert reply.answer is None
    assert reply.failure_kind in ("validation", "sdk_error"), reply.failure
    assert "size_multiplier" in (reply.failure or "")
    assert reply.cost_usd > 0  # the call was billed: its usage came back


def test_a_malformed_body_is_an_sdk_error_charged_at_its_estimate(server: FakeAnthropic) -> None:
    server.script(raw_json_body('{"type": "message", "content": [ {"type": "tool_use"'))
    claude = approver(server)
    reply = ask_one(claude)
    assert reply.answer is None and reply.failure_kind == "sdk_error", reply.failure
    assert "JSONDecodeError" in (reply.failure or "")
    assert reply.cost_usd == 0.0  # none reported
    # served, maybe billed, usage unknown: the budget counts the worst case
    assert claude.budget.spent_today(NOW) == pytest.approx(claude.estimate(PROMPT))
    assert claude.unknown_charges == 1


def test_stop_reason_max_tokens_is_its_own_failure(server: FakeAnthropic) -> None:
    server.script(max_tokens())
    reply = ask_one(approver(server))
    assert reply.answer is None and reply.failure_kind == "max_tokens", reply.failure
    assert reply.output_tokens == 512 and reply.cost_usd > 0


def test_a_refusal_is_its_own_failure(server: FakeAnthropic) -> None:
    server.script(refusal())
    reply = ask_one(approver(server))
    assert reply.answer is None and reply.failure_kind == "refusal", reply.failure
    assert reply.request_id == "req_fake_1"
    assert server.count == 1  # a refusal is not retried


# --- the deadline and retries -----------------------------------------------------------------


def test_an_answer_past_the_deadline_is_a_timeout(server: FakeAnthropic) -> None:
    server.script(delay(1.0))
    claude = approver(server, deadline_s=0.3)
    started = time.perf_counter()
    reply = ask_one(claude)
    elapsed = time.perf_counter() - started
    assert reply.answer is None and reply.failure == "timeout: no answer within 0.3 s"
    assert elapsed < 0.3 + 0.25
    assert reply.latency_s is not None and 0.25 < reply.latency_s < 0.55
    # sent and never answered: the budget holds its estimate, the reply reports no known cost
    assert reply.cost_usd == 0.0
    assert claude.budget.spent_today(NOW) == pytest.approx(claude.estimate(PROMPT))
    assert server.count == 1


def test_429_with_retry_after_is_waited_out_then_answered(server: FakeAnthropic) -> None:
    server.script(status(429, headers={"retry-after": "0.1"}))
    started = time.perf_counter()
    reply = ask_one(approver(server))
    assert reply.answer is not None, reply.failure
    assert server.count == 2
    assert time.perf_counter() - started >= 0.1
    assert reply.request_id == "req_fake_2"


def test_429_with_a_retry_after_past_the_deadline_fails_without_waiting(server: FakeAnthropic) -> None:
    server.script(status(429, headers={"retry-after": "30"}))
    claude = approver(server, deadline_s=1.0)
    started = time.perf_counter()
    reply = ask_one(claude)
    assert time.perf_counter() - started < 0.5
    assert reply.answer is None and reply.failure_kind == "http_429", reply.failure
    assert "retry-after 30 s does not fit" in (reply.failure or "")
    assert reply.request_id == "req_fake_1"
    assert server.count == 1
    assert claude.budget.spent_today(NOW) == 0.0  # an error response is not billed


@pytest.mark.parametrize("code", [500, 529])
def test_a_server_error_is_retried_then_answered(server: FakeAnthropic, code: int) -> None:
    server.script(status(code))
    reply = ask_one(approver(server))
    assert reply.answer is not None, reply.failure
    assert server.count == 2


def test_an_overloaded_api_fails_within_the_deadline(server: FakeAnthropic) -> None:
    server.default = status(529)
    started = time.perf_counter()
    reply = ask_one(approver(server, deadline_s=0.5))
    assert time.perf_counter() - started < 0.5 + 0.25
    assert reply.answer is None and reply.failure_kind == "http_529", reply.failure
    assert "overloaded_error" in (reply.failure or "") and "attempts" in (reply.failure or "")
    assert 2 <= server.count <= 5


def test_400_fails_at_once(server: FakeAnthropic) -> None:
    server.script(status(400, message="tools.0: bad schema"))
    reply = ask_one(approver(server))
    assert reply.answer is None and reply.failure_kind == "http_400", reply.failure
    assert "bad schema" in (reply.failure or "")
    assert server.count == 1


def test_a_refused_connection_is_an_sdk_error_and_costs_nothing() -> None:
    with FakeAnthropic() as fake:
        base_url = fake.base_url
    claude = ClaudeApprover(LlmSettings(base_url=base_url, deadline_s=1.0), KEY, Budget(0.05, 5.0))
    reply = ask_one(claude)
    assert reply.answer is None and reply.failure_kind == "sdk_error", reply.failure
    assert claude.budget.spent_today(NOW) == 0.0  # never sent, never billed


def test_an_approver_bug_is_a_failure_not_an_exception(server: FakeAnthropic) -> None:
    claude = approver(server)

    async def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    claude.client.messages.create = broken  # type: ignore[method-assign]
    reply = ask_one(claude)
    assert reply.failure == "sdk_error: RuntimeError: boom"
    assert claude.budget.spent_today(NOW) == pytest.approx(claude.estimate(PROMPT))  # sent? unknown: the worst case


def test_a_cancelled_ask_settles_its_reservation_and_propagates(server: FakeAnthropic) -> None:
    server.script(delay(1.0))
    claude = approver(server)

    async def run() -> None:
        task = asyncio.create_task(claude.ask(PROMPT, CONTEXT, NOW))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await claude.aclose()

    asyncio.run(run())
    snapshot = claude.budget.snapshot(NOW)
    assert snapshot["reserved_usd"] == 0.0
    assert snapshot["spent_usd"] == pytest.approx(claude.estimate(PROMPT))


# --- the budget --------------------------------------------------------------------------------


def test_a_budget_refusal_sends_no_request(server: FakeAnthropic) -> None:
    claude = approver(server, budget=Budget(0.001, 5.0))
    reply = ask_one(claude)
    assert reply.answer is None and reply.failure_kind == "budget"
    assert "above the per-call ceiling $0.00" in (reply.failure or "")
    assert server.count == 0
    assert claude.budget.refusals == 1


def test_zero_ceilings_mean_no_calls(server: FakeAnthropic) -> None:
    reply = ask_one(approver(server, budget=Budget(0.0, 0.0)))
    assert reply.failure == "budget: the ceilings are zero: no calls"
    assert server.count == 0


def test_the_day_budget_resets_on_the_next_utc_day(server: FakeAnthropic) -> None:
    estimate = approver(server).estimate(PROMPT)
    # room for one call's estimate but not for a second after the first settles at its cost
    claude = approver(server, budget=Budget(0.05, estimate * 1.2))
    late = NOW + DAY - 1  # 23:59:59 UTC
    first, second, third = ask(claude, NOW + 60, late, NOW + DAY)
    assert first.answer is not None
    assert second.failure_kind == "budget" and "would pass the day's ceiling" in (second.failure or "")
    assert third.answer is not None, third.failure  # 00:00:00 UTC: a new day at 0
    assert server.count == 2
    assert claude.budget.spent_today(NOW + DAY) == pytest.approx(third.cost_usd)


def test_budget_reserve_and_settle() -> None:
    budget = Budget(0.05, 0.10)
    first = budget.reserve(0.04, NOW)
    assert not isinstance(first, str)
    assert budget.spent_today(NOW) == pytest.approx(0.04)  # held while in flight
    second = budget.reserve(0.04, NOW)
    assert not isinstance(second, str)
    refused = budget.reserve(0.04, NOW)
    assert refused == "budget: the day's spend $0.08 + estimate $0.0400 would pass the day's ceiling $0.10"
    assert budget.reserve(0.0712, NOW) == "budget: call estimate $0.0712 above the per-call ceiling $0.05"
    budget.settle(first, 0.01)
    budget.settle(second, 0.02)
    assert budget.spent_today(NOW) == pytest.approx(0.03)
    snapshot = budget.snapshot(NOW)
    assert snapshot["day"] == "2026-01-01" and snapshot["reserved_usd"] == 0.0
    assert snapshot["left_usd"] == pytest.approx(0.07) and snapshot["refusals"] == 2
    assert budget.spent_today(NOW + DAY) == 0.0
    assert budget.reserve(math.nan, NOW).startswith("budget:")  # type: ignore[union-attr]


def test_a_settlement_from_a_day_gone_leaves_the_new_day_alone() -> None:
    budget = Budget(0.05, 1.0)
    held = budget.reserve(0.04, NOW + DAY - 0.5)
    assert not isinstance(held, str)
    assert budget.spent_today(NOW + DAY) == 0.0
    budget.settle(held, 0.03)
    assert budget.spent_today(NOW + DAY) == 0.0


def test_the_estimate_is_an_upper_bound_count() -> None:
    assert estimate_input_tokens("abc", "abcd") == 1 + 2
    assert estimate_input_tokens("é") == 1  # two UTF-8 bytes
    assert estimate_input_tokens("") == 0


# --- the price table ---------------------------------------------------------------------------


def test_the_price_table() -> None:
    assert (PRICES["claude-opus-4-5"].input, PRICES["claude-opus-4-5"].output) == (5.0, 25.0)
    assert (PRICES["claude-haiku-4-5"].cache_write, PRICES["claude-haiku-4-5"].cache_read) == (1.25, 0.10)
    assert price("claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]  # a dated snapshot
    assert cost("claude-opus-4-5", 1_000_000, 1_000_000, 1_000_000, 1_000_000) == pytest.approx(5 + 25 + 6.25 + 0.5)
    with pytest.raises(UnknownModelError, match="claude-unknown-9"):
        cost("claude-unknown-9", 1, 1)


def test_an_unpriced_model_fails_when_the_approver_is_built() -> None:
    with pytest.raises(UnknownModelError, match="no price for model 'claude-unknown-9'"):
        ClaudeApprover(LlmSettings(model="claude-unknown-9"), KEY, Budget(0.05, 5.0))
