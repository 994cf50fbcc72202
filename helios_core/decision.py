"""The decision chain: steps that each return `Approved` or `Denied`, run in order until one denies.

prediction -> signal (direction, confidence) -> gate (emergency stop, auto-trading) -> Tier 3
sizing -> approval (Tier 4, pluggable) -> Tier 5 portfolio guard -> execution. The gate comes
before sizing and approval so that a stopped engine never spends an LLM call. A result is a
value, never an exception: every verdict is written to the ledger, so a trade that did not
happen still says why. Steps that produce something (sizing, the guard's check, the execution)
leave it on the context for the steps after them and for the ledger. A step may be async.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from helios_core.risk.assessment import LimitCheck, RiskAssessment
from helios_core.risk.sizing import Sizing
from helios_core.trading.enums import TradingMode
from helios_core.trading.position import Execution


@dataclass(frozen=True, slots=True)
class Approved:
    step: str
    detail: str = ""

    @property
    def approved(self) -> bool:
        return True

    @property
    def reason(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Denied:
    step: str
    reason: str

    @property
    def approved(self) -> bool:
        return False


Verdict = Approved | Denied


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer for one window: its class, the probabilities of BUY, SELL and HOLD,
    its confidence, and the sha256 of the input it saw."""

    label: str
    probabilities: tuple[float, float, float]
    confidence: float
    feature_hash: str


@dataclass(slots=True)
class Context:
    """One decision: what the steps read, and what they leave for the steps after them."""

    pair: str
    prediction: Prediction
    model_version: str
    price: float
    emergency_stop: bool
    auto_trading: bool
    now: float = 0.0  # epoch seconds on the engine's clock
    candle_ts: float = 0.0  # open time of the candle whose close triggered the decision
    key: str = ""  # the position this decision would open
    mode: TradingMode = TradingMode.PAPER
    halted: str = ""  # why the engine stops entries besides its switches (a ledger that fails writes)
    sizing: Sizing | None = None
    risk: RiskAssessment | None = None
    check: LimitCheck | None = None
    execution: Execution | None = None
    # Tier 4's audit record (helios_live.ledger.records.LlmDecisionRecord), typed loosely here
    # because the core knows no ledger.
    approval: object | None = None


class Step(Protocol):
    name: str

    def __call__(self, context: Context) -> Verdict | Awaitable[Verdict]: ...


class Signal:
    """A trade needs a direction and enough confidence (design: at least 0.55)."""

    name = "signal"

    def __init__(self, min_confidence: float) -> None:
        self.min_confidence = min_confidence

    def __call__(self, context: Context) -> Verdict:
        p = context.prediction
        if p.label == "HOLD":
            return Denied(self.name, "model predicts HOLD")
        if p.confidence < self.min_confidence:
            return Denied(self.name, f"confidence {p.confidence:.3f} below {self.min_confidence:.2f}")
        return Approved(self.name, f"{p.label} at confidence {p.confidence:.3f}")


class Gate:
    """The engine's switches: an emergency stop, a halt or disabled auto-trading blocks every entry."""

    name = "gate"

    def __call__(self, context: Context) -> Verdict:
        if context.emergency_stop:
            return Denied(self.name, "emergency stop active")
        if context.halted:
            return Denied(self.name, context.halted)
        if not context.auto_trading:
            return Denied(self.name, "auto-trading disabled")
        return Approved(self.name, "trading enabled")


async def run_chain(
    steps: Sequence[Step], context: Context, done: Callable[[str], None] | None = None
) -> list[Verdict]:
    """Every verdict up to and including the first denial. `done(name)` is called as each step
    returns (an async one once awaited): the caller's stopwatch times the steps; this reads no clock."""
    verdicts: list[Verdict] = [Approved("prediction", f"{context.prediction.label} by {context.model_version}")]
    for step in steps:
        result = step(context)
        verdict = await result if inspect.isawaitable(result) else result
        if done is not None:
            done(step.name)
        verdicts.append(verdict)
        if isinstance(verdict, Denied):
            break
    return verdicts
