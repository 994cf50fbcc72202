"""The ledger's tables and the records the engine hands it.

Every decision the live service takes lands in `predictions` (with its chain of steps in
`decision_steps`) so that it can be scored against what the market did and audited later.
"""

from __future__ import annotations

from dataclasses import dataclass
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

LABELS = frozenset({"BUY", "SELL", "HOLD"})

# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
BigID = BigInteger().with_variant(Integer(), "sqlite")


def require_aware(name: str, value: datetime) -> None:
    """Refuse a naive datetime: the ledger could only guess which clock it was read from."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


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


class Prediction(Base):
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


class DecisionStep(Base):
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


class EngineEvent(Base):
    __tablename__ = "engine_events"
    __table_args__ = (Index("ix_engine_events_kind", "kind"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    pair: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One link of the decision chain; `reason` is empty when the step approved."""

    step: str
    approved: bool
    reason: str


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

    def __post_init__(self) -> None:
        for name in ("candle_ts", "decided_at", "outcome_due"):
            require_aware(name, getattr(self, name))
        if self.prediction not in LABELS:
            raise ValueError(f"prediction must be one of {sorted(LABELS)}, got {self.prediction!r}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the market did over a prediction's label horizon."""

    prediction_id: int
    actual_outcome: str
    outcome_return: float

    def __post_init__(self) -> None:
        if self.actual_outcome not in LABELS:
            raise ValueError(f"actual_outcome must be one of {sorted(LABELS)}, got {self.actual_outcome!r}")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of JSON-ready rows, newest first; `next_cursor` is None on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None
