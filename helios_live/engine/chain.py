"""The decision chain: steps that each return `Approved` or `Denied`, run in order until one denies.

Part 1 of the live service has the prediction, the signal filter, a pluggable approval step
(pass-through until the LLM approver exists) and the engine's own gate (emergency stop,
auto-trading switch). Sizing, portfolio limits and execution plug in after the gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from helios_core.decision import Approved, Denied, Verdict
from helios_live.inference import Prediction


@dataclass(frozen=True, slots=True)
class Context:
    pair: str
    prediction: Prediction
    model_version: str
    price: float
    emergency_stop: bool
    auto_trading: bool


class Step(Protocol):
    name: str

    def __call__(self, context: Context) -> Verdict: ...


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


class PassThroughApproval:
    """The default approver until the LLM step exists: approves, and says so."""

    name = "approval"

    def __call__(self, context: Context) -> Verdict:
        return Approved(self.name, "pass-through: no approver configured")


class Gate:
    """The engine's switches: an emergency stop or disabled auto-trading blocks every entry."""

    name = "gate"

    def __call__(self, context: Context) -> Verdict:
        if context.emergency_stop:
            return Denied(self.name, "emergency stop active")
        if not context.auto_trading:
            return Denied(self.name, "auto-trading disabled")
        return Approved(self.name, "no execution step configured yet")


def run_chain(steps: Sequence[Step], context: Context) -> list[Verdict]:
    """Every verdict up to and including the first denial."""
    verdicts: list[Verdict] = [Approved("prediction", f"{context.prediction.label} by {context.model_version}")]
    for step in steps:
        verdict = step(context)
        verdicts.append(verdict)
        if isinstance(verdict, Denied):
            break
    return verdicts
