"""The decision chain: steps that each return `Approved` or `Denied`, run in order until one denies.

prediction -> signal (direction, confidence) -> gate (emergency stop, auto-trading) -> Tier 3
sizing -> approval (pluggable: pass-through until the LLM approver exists) -> Tier 5 portfolio
guard -> execution. The gate comes before sizing and approval so that a stopped engine never
spends an LLM call. Steps that produce something (sizing, the guard's check, the trade) leave
it on the context for the steps after them and for the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from helios_core.decision import Approved, Denied, Verdict
from helios_live.inference import Prediction

if TYPE_CHECKING:
    from helios_core.risk.sizing import Sizing
    from helios_live.ledger.records import CheckRecord, RiskRecord, TradeRecord
    from helios_live.stream.events import Book


@dataclass(slots=True)
class Context:
    pair: str
    prediction: Prediction
    model_version: str
    price: float
    emergency_stop: bool
    auto_trading: bool
    now: float = 0.0
    key: str = ""  # the position this decision would open
    mode: str = "PAPER"
    book: Book | None = None
    sizing: Sizing | None = None
    risk: RiskRecord | None = None
    check: CheckRecord | None = None
    trade: TradeRecord | None = None


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
        return Approved(self.name, "trading enabled")


def run_chain(steps: Sequence[Step], context: Context) -> list[Verdict]:
    """Every verdict up to and including the first denial."""
    verdicts: list[Verdict] = [Approved("prediction", f"{context.prediction.label} by {context.model_version}")]
    for step in steps:
        verdict = step(context)
        verdicts.append(verdict)
        if isinstance(verdict, Denied):
            break
    return verdicts
