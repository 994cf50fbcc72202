"""What the engine hands the ledger beside the trading domain's own objects: a decision with its
chain of verdicts, an outcome, a mode change; and the pages the ledger answers with.

Money is in the pair's quote currency (ZAR for BTCZAR); quantities in its base currency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from helios_core.risk.assessment import LimitCheck, RiskAssessment
from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import TradingMode
from helios_core.trading.orders import require_aware
from helios_core.trading.position import Execution

LABELS = frozenset({"BUY", "SELL", "HOLD"})


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One link of the decision chain; `reason` is empty when the step approved."""

    step: str
    approved: bool
    reason: str


@dataclass(frozen=True, slots=True)
class LlmDecisionRecord:
    """Tier 4's decision on one proposal, as audited: what the approver saw (the market context,
    by its hash and in full), what it cost, what it answered, what the merge clamped, and the
    verdict that stood. `source` is "llm", "rules", "recorded" or "failsafe" (the failure policy
    decided, `failure` says why); `verdict` is APPROVE, REJECT or MODIFY as merged, or
    NEURAL_ONLY (no valid answer, and the `neural_only` policy let the entry go on)."""

    approver: str
    source: str
    verdict: str
    decided_at: datetime
    context: str  # the market context as serialised for the prompt (deterministic JSON)
    context_hash: str
    replay_key: str  # sha256 of (model id, prompt version, schema version, context): what `recorded` looks up
    prompt_version: str = ""
    prompt_hash: str = ""
    model_id: str = ""
    request_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    latency_ms: float | None = None
    cost_usd: float = 0.0
    answer: str | None = None  # the parsed answer as JSON (approval.answer.Answer)
    clamps: tuple[str, ...] = ()
    failure: str | None = None

    def __post_init__(self) -> None:
        require_aware("decided_at", self.decided_at)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """A decision as taken: the model's answer for the candle whose close triggered it."""

    pair: str
    candle_ts: datetime
    decided_at: datetime
    model_version: str
    feature_set_version: str
    feature_hash: str
    prediction: str
    p_buy: float
    p_sell: float
    p_hold: float
    confidence: float
    entry_price: float
    outcome_due: datetime
    latency_ms: float | None = None
    steps: tuple[StepRecord, ...] = ()
    risk: RiskAssessment | None = None  # Tier 3's sizing, when the chain got that far
    check: LimitCheck | None = None  # Tier 5's verdict, when sizing approved
    execution: Execution | None = None  # the opening order with its fills and the position it opened
    llm: LlmDecisionRecord | None = None  # Tier 4's decision, when the chain got that far

    def __post_init__(self) -> None:
        for name in ("candle_ts", "decided_at", "outcome_due"):
            require_aware(name, getattr(self, name))
        if self.prediction not in LABELS:
            raise ValueError(f"prediction must be one of {sorted(LABELS)}, got {self.prediction!r}")


class DecisionRef(NamedTuple):
    """A decision by the key the ledger stores it under."""

    pair: str
    candle_ts: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the market did over a prediction's label horizon; the prediction named by its row
    id or, when its row is not known yet (it lands in the same write, or waits in the spool),
    by its key."""

    prediction_id: int | None
    actual_outcome: str
    outcome_return: float
    ref: DecisionRef | None = None

    def __post_init__(self) -> None:
        if (self.prediction_id is None) == (self.ref is None):
            raise ValueError("an outcome names its prediction by id or by key, not both or neither")
        if self.actual_outcome not in LABELS:
            raise ValueError(f"actual_outcome must be one of {sorted(LABELS)}, got {self.actual_outcome!r}")


@dataclass(frozen=True, slots=True)
class ModeRecord:
    mode: TradingMode
    previous: TradingMode
    reason: str
    at: datetime

    def __post_init__(self) -> None:
        require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class Unit:
    """What must land together: decisions (each with the position it opened), positions opened
    by later fills (with their decision), closes, and the snapshots after them."""

    predictions: tuple[PredictionRecord, ...] = ()
    closes: tuple[Execution, ...] = ()
    snapshots: tuple[PortfolioSnapshot, ...] = ()
    opens: tuple[tuple[DecisionRef | None, Execution], ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of JSON-ready rows, newest first; `next_cursor` is None on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None


PAGE_MAX = 1000  # the ledger's largest page


def all_items(read: Callable[..., Page], **filters: Any) -> list[dict[str, Any]]:
    """Every row a paged ledger query (`Ledger.fills`, `.rebalances`, ...) returns, newest first."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = read(**filters, cursor=cursor, limit=PAGE_MAX)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
