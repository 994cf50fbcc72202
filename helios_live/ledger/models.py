"""The ledger's tables (the records it is handed are in records.py).

Every decision the live service takes lands in `predictions` (with its chain of steps in
`decision_steps`) so that it can be scored against what the market did and audited later.
What trading made of it lands beside it: the sizing in `risk_decisions`, the portfolio guard's
verdict in `portfolio_checks`, and any position it opened with its `orders` and `fills`;
`portfolio_snapshots` and `mode_changes` let a restart rebuild the account as it was.
Tier 4's approval of a decision lands in `llm_decisions`, with the market context its approver
read in `market_context_snapshots`. Every order sent to an exchange is journalled first in
`order_journal`, with each of its transitions in `order_transitions`; `reconciliations` records
each comparison of the exchange's account with the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helios_core.trading.orders import require_aware

# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
BigID = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        require_aware("datetime", value)
        # SQLite keeps no offset, so every value must be on the same clock before it is stored.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("pair", "candle_ts", "model_version", name="uq_predictions_candle_model"),
        Index("ix_predictions_pair_candle_ts", "pair", "candle_ts"),
        # Outcome filling only ever looks at predictions still waiting for theirs.
        Index(
            "ix_predictions_pending",
            "pair",
            "outcome_due",
            postgresql_where=text("actual_outcome IS NULL"),
            sqlite_where=text("actual_outcome IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    pair: Mapped[str] = mapped_column(String(20))
    candle_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    model_version: Mapped[str] = mapped_column(String(80))
    feature_set_version: Mapped[str] = mapped_column(String(16))
    feature_hash: Mapped[str] = mapped_column(String(64))
    prediction: Mapped[str] = mapped_column(String(4))
    p_buy: Mapped[float] = mapped_column(Float)
    p_sell: Mapped[float] = mapped_column(Float)
    p_hold: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    outcome_due: Mapped[datetime] = mapped_column(UTCDateTime())
    actual_outcome: Mapped[str | None] = mapped_column(String(4))
    outcome_return: Mapped[float | None] = mapped_column(Float)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float)


class DecisionStepRow(Base):
    __tablename__ = "decision_steps"
    __table_args__ = (UniqueConstraint("prediction_id", "position", name="uq_decision_steps_position"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("predictions.id", ondelete="CASCADE", name="fk_decision_steps_prediction")
    )
    position: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(32))
    approved: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)


class EngineEventRow(Base):
    __tablename__ = "engine_events"
    __table_args__ = (Index("ix_engine_events_kind", "kind"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    pair: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))


def _prediction_fk(name: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("predictions.id", ondelete=ondelete, name=name)


class RiskDecisionRow(Base):
    """Tier 3's sizing of one prediction; NULL where there was no estimate (no volatility yet)."""

    __tablename__ = "risk_decisions"
    __table_args__ = (UniqueConstraint("prediction_id", name="uq_risk_decisions_prediction"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(BigID, _prediction_fk("fk_risk_decisions_prediction"))
    pair: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    direction: Mapped[str] = mapped_column(String(4))
    probability: Mapped[float] = mapped_column(Float)
    daily_vol: Mapped[float | None] = mapped_column(Float)
    vol_source: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str] = mapped_column(String(16))
    omega: Mapped[float | None] = mapped_column(Float)
    alpha: Mapped[float | None] = mapped_column(Float)
    beta: Mapped[float | None] = mapped_column(Float)
    kelly_full: Mapped[float] = mapped_column(Float)
    kelly_fractional: Mapped[float] = mapped_column(Float)
    vol_adjusted: Mapped[float | None] = mapped_column(Float)
    drawdown_adjusted: Mapped[float | None] = mapped_column(Float)
    cap: Mapped[float] = mapped_column(Float)
    fraction: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    stop_loss_pct: Mapped[float | None] = mapped_column(Float)
    take_profit_pct: Mapped[float | None] = mapped_column(Float)
    max_hold_s: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    drawdown: Mapped[float] = mapped_column(Float)
    approved: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)


class PortfolioCheckRow(Base):
    __tablename__ = "portfolio_checks"
    __table_args__ = (UniqueConstraint("prediction_id", name="uq_portfolio_checks_prediction"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(BigID, _prediction_fk("fk_portfolio_checks_prediction"))
    passed: Mapped[bool] = mapped_column(Boolean)
    violations: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, float | None]] = mapped_column(JSON)  # NaN (unknown) stored as null
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PositionRow(Base):
    """A position as it stands: inserted when opened, updated once when closed."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("key", name="uq_positions_key"),
        Index("ix_positions_status", "status"),
        Index("ix_positions_pair_opened_at", "pair", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    # SET NULL, not CASCADE: a position's orders and fills must outlive a pruned prediction.
    prediction_id: Mapped[int | None] = mapped_column(BigID, _prediction_fk("fk_positions_prediction", "SET NULL"))
    pair: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(6))
    quantity: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    stop_loss_price: Mapped[float] = mapped_column(Float)
    take_profit_price: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    entry_fee: Mapped[float] = mapped_column(Float)
    exit_price: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(String(16))
    exit_fee: Mapped[float] = mapped_column(Float)
    realised_pnl: Mapped[float | None] = mapped_column(Float)
    reduced_pnl: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
        Index("ix_orders_position_key", "position_key"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    position_key: Mapped[str] = mapped_column(String(64), ForeignKey("positions.key", name="fk_orders_position_key"))
    pair: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(4))
    purpose: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (Index("ix_fills_client_order_id", "client_order_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.client_order_id", name="fk_fills_client_order_id")
    )
    price: Mapped[float] = mapped_column(Float)
    quantity: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    liquidity: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(8))
    levels: Mapped[int] = mapped_column(Integer)
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PortfolioSnapshotRow(Base):
    __tablename__ = "portfolio_snapshots"
    __table_args__ = (Index("ix_portfolio_snapshots_at", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    cash: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    unrealised: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    peak: Mapped[float] = mapped_column(Float)
    drawdown: Mapped[float] = mapped_column(Float)
    day_start_equity: Mapped[float] = mapped_column(Float)
    daily_pnl: Mapped[float] = mapped_column(Float)
    open_positions: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))


class ModeChangeRow(Base):
    __tablename__ = "mode_changes"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(8))
    previous: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketContextSnapshotRow(Base):
    """The market context an approver read for one decision, as the prompt carried it (JSON)."""

    __tablename__ = "market_context_snapshots"
    __table_args__ = (
        UniqueConstraint("prediction_id", name="uq_market_context_snapshots_prediction"),
        Index("ix_market_context_snapshots_context_hash", "context_hash"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(BigID, _prediction_fk("fk_market_context_snapshots_prediction"))
    pair: Mapped[str] = mapped_column(String(20))
    candle_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    context_hash: Mapped[str] = mapped_column(String(64))
    context: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LlmDecisionRow(Base):
    """Tier 4's decision on one prediction's proposal: who answered (`source`: llm, rules,
    recorded or failsafe), what it cost, its answer (JSON, NULL without one), the merge's clamps
    (a JSON list) and the verdict that stood; `replay_key` is what a `recorded` approver looks up."""

    __tablename__ = "llm_decisions"
    __table_args__ = (
        UniqueConstraint("prediction_id", name="uq_llm_decisions_prediction"),
        Index("ix_llm_decisions_replay_key", "replay_key"),
        Index("ix_llm_decisions_decided_at", "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(BigID, _prediction_fk("fk_llm_decisions_prediction"))
    context_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("market_context_snapshots.id", ondelete="CASCADE", name="fk_llm_decisions_context")
    )
    pair: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approver: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(16))
    prompt_version: Mapped[str] = mapped_column(String(32))
    prompt_hash: Mapped[str] = mapped_column(String(64))
    context_hash: Mapped[str] = mapped_column(String(64))
    replay_key: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(80))
    request_id: Mapped[str | None] = mapped_column(Text)  # the API's, of whatever length it sends
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_tokens: Mapped[int] = mapped_column(Integer)
    cache_read_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    answer: Mapped[str | None] = mapped_column(Text)
    clamps: Mapped[str] = mapped_column(Text)
    failure: Mapped[str | None] = mapped_column(Text)


class OrderJournalRow(Base):
    """An order as journalled (orders.py): its intent, written before its request is sent, and
    where it stands (`status` and the cumulative fill), brought up to date by each transition.
    No foreign key to positions: an opening's intent is written before its position exists."""

    __tablename__ = "order_journal"
    __table_args__ = (
        UniqueConstraint("client_order_id", name="uq_order_journal_client_order_id"),
        Index("ix_order_journal_status", "status"),
        Index("ix_order_journal_pair", "pair"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    position_key: Mapped[str] = mapped_column(String(64))
    pair: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(4))
    purpose: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    time_in_force: Mapped[str | None] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    opening: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    venue_order_id: Mapped[str | None] = mapped_column(Text)  # the exchange's, of whatever length it sends
    filled_quantity: Mapped[float] = mapped_column(Float)
    average_price: Mapped[float | None] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderTransitionRow(Base):
    """One step of a journalled order's history, as reported (a late duplicate included)."""

    __tablename__ = "order_transitions"
    __table_args__ = (Index("ix_order_transitions_client_order_id", "client_order_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("order_journal.client_order_id", name="fk_order_transitions_client_order_id")
    )
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    venue_order_id: Mapped[str | None] = mapped_column(Text)
    filled_quantity: Mapped[float] = mapped_column(Float)
    average_price: Mapped[float | None] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text)


class ReconciliationRow(Base):
    """One comparison of the exchange's account with the ledger: `ok` without mismatches (a JSON
    list of {"kind", "pair", "detail", ...}); an operator acknowledges one that had some."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    mismatches: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)


class OracleDeviationRow(Base):
    """One deviation check of one asset (surveillance): its price against the median of the
    fresh references, the onset of the deviation it is part of, and its risk. `uid` makes a
    replayed spool entry land once."""

    __tablename__ = "oracle_deviations"
    __table_args__ = (Index("ix_oracle_deviations_asset_ts", "asset", "ts"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    venue: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    price: Mapped[float | None] = mapped_column(Float)
    reference: Mapped[float | None] = mapped_column(Float)
    deviation_pct: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(8))
    onset: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    sustained: Mapped[bool] = mapped_column(Boolean)
    risk: Mapped[float] = mapped_column(Float)
    used: Mapped[int] = mapped_column(Integer)
    stale: Mapped[int] = mapped_column(Integer)
    bad: Mapped[int] = mapped_column(Integer)


class LiquidationPatternRow(Base):
    """One cascade check of one asset that saw qualifying liquidations in its window."""

    __tablename__ = "liquidation_patterns"
    __table_args__ = (Index("ix_liquidation_patterns_ts", "ts"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    venue: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(32))
    pattern: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer)
    longs: Mapped[int] = mapped_column(Integer)
    shorts: Mapped[int] = mapped_column(Integer)
    notional: Mapped[float] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str | None] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    first: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LiquidationRow(Base):
    """A liquidation fill the cascade detector counted (qualifying, first seen), for the batch twin."""

    __tablename__ = "liquidations"
    __table_args__ = (Index("ix_liquidations_ts", "ts"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    venue: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[float] = mapped_column(Float)
    size: Mapped[float] = mapped_column(Float)
    notional: Mapped[float] = mapped_column(Float)
    user: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str | None] = mapped_column(String(80))


class VaultSnapshotRow(Base):
    """One snapshot of a vault (HLP) with its changes, their z-scores and the health score."""

    __tablename__ = "vault_snapshots"
    __table_args__ = (Index("ix_vault_snapshots_ts", "ts"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    venue: Mapped[str] = mapped_column(String(32))
    vault: Mapped[str] = mapped_column(String(66))
    equity: Mapped[float] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    equity_change_pct: Mapped[float | None] = mapped_column(Float)
    pnl_change: Mapped[float | None] = mapped_column(Float)
    z_equity: Mapped[float | None] = mapped_column(Float)
    z_pnl: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(8))


class SecurityEventRow(Base):
    """A security event as it stands (helios_core.surveillance.events): written again, whole,
    each time it changes, keyed by its de-duplication id."""

    __tablename__ = "security_events"
    __table_args__ = (
        Index("ix_security_events_last_seen", "last_seen"),
        Index("ix_security_events_asset", "asset"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    venue: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(66))
    severity: Mapped[str] = mapped_column(String(8))
    peak: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    indicators: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str | None] = mapped_column(String(80))
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AllocationTargetRow(Base):
    """Target weights as the allocation computed them (helios_core.allocation.targets), with what
    it read; the newest row is the one in force."""

    __tablename__ = "allocation_targets"
    __table_args__ = (Index("ix_allocation_targets_computed_at", "computed_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(64))
    fallback: Mapped[str | None] = mapped_column(Text)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)


class RebalancingEventRow(Base):
    """One rebalance: the targets it followed, the weights before and after, its orders, and why
    (the design's section 27 table, with the engine's reason and the targets' row)."""

    __tablename__ = "rebalancing_events"
    __table_args__ = (Index("ix_rebalancing_events_at", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    targets_id: Mapped[int | None] = mapped_column(BigInteger)
    target_weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights_before: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights_after: Mapped[dict[str, Any]] = mapped_column(JSON)
    orders: Mapped[list[Any]] = mapped_column(JSON)


class AlertDeliveryRow(Base):
    """One alert (or its recovery) sent to one channel: how many tries it took and how it ended."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_raised_at", "raised_at"),
        Index("ix_alert_deliveries_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(66))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # FIRING or RESOLVED
    channel: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # DELIVERED or FAILED
    error: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiAuditRow(Base):
    """What the API refused (`REFUSED`; `SUPPRESSED`: a count of further refusals of one client and
    minute, not itemised) and every operator action it carried out (`ACTION`), with who and when."""

    __tablename__ = "api_audit"
    __table_args__ = (Index("ix_api_audit_at", "at"), Index("ix_api_audit_kind", "kind"))

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    principal: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    via: Mapped[str | None] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
