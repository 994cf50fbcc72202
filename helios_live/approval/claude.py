"""The Claude approver: one forced tool call on the Messages API per decision, within one
deadline that covers its retries, with a budget that refuses a call before it is sent when its
worst case would pass a ceiling. Every outcome is a `Reply`; a failure names its kind (timeout,
sdk_error, http_<status>, validation, max_tokens, refusal, budget) and is never a guessed answer.

The SDK's own retries are off (`max_retries=0`): its back-off knows nothing of the deadline, and
its default timeout (minutes) would outlive it. Retries here: a 429 waits its `retry-after` when
that fits in the time left and fails at once when it does not; a 5xx (529 overloaded included)
backs off briefly; any other 4xx fails at once; a connection error or an unreadable body fails at
once too, since the request may have been served and billed, and a second one would be billed
again."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from anthropic import APIConnectionError, APIStatusError, APITimeoutError, AsyncAnthropic, transform_schema
from anthropic.types import ToolChoiceToolParam, ToolParam

from helios_live.approval.answer import TOOL_NAME, Answer, AnswerError, parse, tool
from helios_live.approval.approver import Prompt, Reply
from helios_live.approval.context import MarketContext
from helios_live.approval.cost import Budget, Reservation, cost, estimate_input_tokens, price, worst_case
from helios_live.settings import LlmSettings

BACKOFF_S = (0.05, 0.2)  # after a 5xx; doubling from the last one after these
MAX_ATTEMPTS = 5
MIN_ATTEMPT_S = 0.05  # less time left than this is not worth another attempt
CUT_OFF = ("max_tokens", "model_context_window_exceeded")
# One call of the one tool: the model may not answer in text, nor call it twice.
TOOL_CHOICE: ToolChoiceToolParam = {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True}


def request_tool() -> ToolParam:
    """`answer.tool()` as sent. `strict` stays: the 2.16 SDK sends it as a ToolParam field and
    the API holds a strict tool's input to its schema's shape. But a strict schema may not carry
    numeric, string-length or array-size bounds (the API refuses them; the SDK's own structured
    output helpers strip them), so `transform_schema` moves each bound into its property's
    description, where the model still reads it. `parse` checks every bound on the answer."""
    definition = tool()
    definition["input_schema"] = transform_schema(definition["input_schema"])
    return cast(ToolParam, definition)


@dataclass
class _Call:
    """What one ask learnt about its requests, for the reply and the budget."""

    request_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    usage_known: bool = False
    in_flight: bool = False  # a request was sent and neither a response nor an error response came back
    attempts: int = 0


class ClaudeApprover:
    name = "claude"
    remote = True  # its answers take a network round trip: the kernel runs its decisions beside the worker

    def __init__(
        self,
        settings: LlmSettings,
        api_key: str,
        budget: Budget,
        *,
        client: AsyncAnthropic | None = None,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        price(settings.model)  # an unpriced model fails here, at start, not on every decision
        self.settings = settings
        # The model asked for, not the dated snapshot that answered: replay keys and the price
        # table both name the model as configured.
        self.model_id = settings.model
        self.budget = budget
        self.client = client or AsyncAnthropic(api_key=api_key, base_url=settings.base_url or None, max_retries=0)
        self.perf = perf
        self.tool = request_tool()
        self._tool_json = json.dumps(self.tool, sort_keys=True, separators=(",", ":"))
        self.unknown_charges = 0  # calls settled at their estimate: sent, no usage ever seen

    async def aclose(self) -> None:
        """Closes the SDK client's connections (the engine's shutdown)."""
        await self.client.close()

    def estimate(self, prompt: Prompt) -> float:
        """The call's worst case in USD, from a local upper-bound count of its input tokens."""
        tokens = estimate_input_tokens(prompt.system, prompt.user, self._tool_json)
        return worst_case(self.model_id, tokens, self.settings.max_tokens)

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        started = self.perf()
        reservation = self.budget.reserve(self.estimate(prompt), now)
        if isinstance(reservation, str):
            return Reply(None, reservation, model_id=self.model_id, latency_s=self.perf() - started)
        call = _Call()
        try:
            answer, failure = await self._deadline(prompt, call)
        except asyncio.CancelledError:
            self._settle(reservation, call)
            raise
        except Exception as exc:  # a bug or an SDK surprise is a failure, never an exception out of ask()
            answer, failure = None, f"sdk_error: {type(exc).__name__}: {exc}"
        self._settle(reservation, call)
        return Reply(
            answer,
            failure,
            "llm",
            model_id=self.model_id,
            request_id=call.request_id,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_creation_tokens=call.cache_creation_tokens,
            cache_read_tokens=call.cache_read_tokens,
            latency_s=self.perf() - started,
            cost_usd=self._cost(call),
        )

    async def _deadline(self, prompt: Prompt, call: _Call) -> tuple[Answer | None, str | None]:
        deadline_s = self.settings.deadline_s
        try:
            async with asyncio.timeout(deadline_s) as scope:
                return await self._attempts(prompt, call, scope)
        except TimeoutError:
            return None, f"timeout: no answer within {deadline_s:g} s"

    async def _attempts(self, prompt: Prompt, call: _Call, scope: asyncio.Timeout) -> tuple[Answer | None, str | None]:
        loop = asyncio.get_running_loop()
        when = scope.when()
        assert when is not None  # noqa: S101 -- the scope was opened with a deadline

        def left() -> float:  # on the loop's monotonic clock, the one the deadline runs on
            return when - loop.time()

        failure = "sdk_error: no attempt made"
        for attempt in range(MAX_ATTEMPTS):
            call.attempts += 1
            call.in_flight = True
            try:
                # No `temperature`: the 2.x SDK has no sampling parameters and the API version
                # it sends (anthropic-version 2026-10-21) answers 400 to any, even the default,
                # so no temperature is sent (and none is configurable).
                message = await self.client.messages.create(
                    model=self.settings.model,
                    max_tokens=self.settings.max_tokens,
                    system=prompt.system,
                    messages=[{"role": "user", "content": prompt.user}],
                    tools=[self.tool],
                    tool_choice=TOOL_CHOICE,
                    timeout=max(left(), 0.001),  # the SDK's own timeout never outlives the deadline
                )
            except APITimeoutError as exc:
                call.in_flight = not _never_sent(exc)
                return None, f"timeout: no answer within {self.settings.deadline_s:g} s"
            except APIConnectionError as exc:
                call.in_flight = not _never_sent(exc)
                return None, f"sdk_error: {type(exc).__name__}: {exc}{_cause(exc)}"
            except APIStatusError as exc:
                call.in_flight = False  # an error response is not billed
                call.request_id = exc.request_id or call.request_id
                failure = _http_failure(exc, call.attempts)
                wait, why = _wait(exc, attempt, left())
                if wait is None:
                    return None, f"{failure}{why}"
                await asyncio.sleep(wait)
                continue
            return self._read(message, call)
        return None, failure

    def _read(self, message: Any, call: _Call) -> tuple[Answer | None, str | None]:
        call.in_flight = False
        call.request_id = getattr(message, "_request_id", None) or call.request_id
        usage = getattr(message, "usage", None)
        if usage is not None:
            call.usage_known = True
            call.input_tokens = _tokens(usage, "input_tokens")
            call.output_tokens = _tokens(usage, "output_tokens")
            call.cache_creation_tokens = _tokens(usage, "cache_creation_input_tokens")
            call.cache_read_tokens = _tokens(usage, "cache_read_input_tokens")
        stop = getattr(message, "stop_reason", None)
        if stop in CUT_OFF:
            return None, (
                f"max_tokens: the answer was cut off ({stop}) after {call.output_tokens} output tokens"
                f" of max_tokens {self.settings.max_tokens}"
            )
        if stop == "refusal":
            details = getattr(message, "stop_details", None)
            why = [str(v) for v in (getattr(details, "category", None), getattr(details, "explanation", None)) if v]
            return None, "refusal: the model declined to answer" + (f" ({': '.join(why)})" if why else "")
        content = getattr(message, "content", None) or []
        calls = [block for block in content if getattr(block, "type", None) == "tool_use"]
        if not calls:
            kinds = ", ".join(str(getattr(block, "type", "?")) for block in content) or "nothing"
            return None, f"validation: no tool call in the response (stop_reason {stop}, content: {kinds})"
        if len(calls) > 1:
            return None, f"validation: {len(calls)} tool calls where exactly one was asked for"
        if calls[0].name != TOOL_NAME:
            return None, f"validation: a call of tool {calls[0].name!r}, not {TOOL_NAME!r}"
        try:
            return parse(calls[0].input), None
        except AnswerError as exc:
            return None, f"validation: {exc}"

    def _cost(self, call: _Call) -> float:
        if not call.usage_known:
            return 0.0
        return cost(
            self.model_id, call.input_tokens, call.output_tokens, call.cache_creation_tokens, call.cache_read_tokens
        )

    def _settle(self, reservation: Reservation, call: _Call) -> None:
        """The budget charged what the call cost. A request sent with no usage ever seen (a
        timeout, a dropped connection, an unreadable body, a cancellation) may still have been
        served and billed: it is charged at its estimate, the most it could have cost, so the
        ceilings hold whatever happened to it. Its reply still says cost_usd 0.0: that field is
        what the API reported, and it reported nothing."""
        if call.in_flight and not call.usage_known:
            self.unknown_charges += 1
            self.budget.settle(reservation, reservation.usd)
        else:
            self.budget.settle(reservation, self._cost(call))


def _wait(exc: APIStatusError, attempt: int, left: float) -> tuple[float | None, str]:
    """How long to wait before the next attempt (None: none), and why not when none."""
    status = exc.status_code
    if attempt + 1 >= MAX_ATTEMPTS:
        return None, ""
    if status == 429:
        after = _retry_after(exc)
        if after is not None:
            if after + MIN_ATTEMPT_S > left:
                return None, f"; retry-after {after:g} s does not fit in the {max(left, 0.0):.2f} s left"
            return after, ""
    elif status < 500:
        return None, ""
    backoff = BACKOFF_S[attempt] if attempt < len(BACKOFF_S) else BACKOFF_S[-1] * 2 ** (attempt - len(BACKOFF_S) + 1)
    wait = min(backoff, left - MIN_ATTEMPT_S)
    if wait <= 0:
        return None, f"; no time left for another attempt ({max(left, 0.0):.2f} s)"
    return wait, ""


def _retry_after(exc: APIStatusError) -> float | None:
    """`retry-after-ms` or `retry-after` in seconds; an HTTP date is not read (it would take a
    wall clock), and the wait falls back to the back-off."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


def _http_failure(exc: APIStatusError, attempts: int) -> str:
    detail = exc.api_message or exc.message
    tail = f" (after {attempts} attempts)" if attempts > 1 else ""
    return f"http_{exc.status_code}: {exc.type + ': ' if exc.type else ''}{detail}{tail}"


def _tokens(usage: Any, field: str) -> int:
    value = getattr(usage, field, None)
    return value if isinstance(value, int) and value > 0 else 0


def _never_sent(exc: APIConnectionError) -> bool:
    """A connection that was never made sent nothing, so nothing can be billed. By name, as
    the SDK's transport (httpx2) is its own dependency, not this package's."""
    return type(exc.__cause__).__name__ in ("ConnectError", "ConnectTimeout")


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    return f" ({type(cause).__name__}: {cause})" if cause is not None else ""
