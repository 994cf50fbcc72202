"""The initial ledger schema: predictions, their decision steps and engine events.

Written by hand and frozen: it spells out its types instead of importing the models, so that
later model changes need a new migration instead of silently rewriting this one.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("actual_outcome IS NULL")


def big_id() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("candle_ts", timestamp(), nullable=False),
        sa.Column("decided_at", timestamp(), nullable=False),
        sa.Column("model_version", sa.String(80), nullable=False),
        sa.Column("feature_set_version", sa.String(16), nullable=False),
        sa.Column("feature_hash", sa.String(64), nullable=False),
        sa.Column("prediction", sa.String(4), nullable=False),
        sa.Column("p_buy", sa.Float(), nullable=False),
        sa.Column("p_sell", sa.Float(), nullable=False),
        sa.Column("p_hold", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("outcome_due", timestamp(), nullable=False),
        sa.Column("actual_outcome", sa.String(4), nullable=True),
        sa.Column("outcome_return", sa.Float(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.UniqueConstraint("pair", "candle_ts", "model_version", name="uq_predictions_candle_model"),
    )
    op.create_index("ix_predictions_pair_candle_ts", "predictions", ["pair", "candle_ts"])
    op.create_index(
        "ix_predictions_pending",
        "predictions",
        ["pair", "outcome_due"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "decision_steps",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column(
            "prediction_id",
            big_id(),
            sa.ForeignKey("predictions.id", ondelete="CASCADE", name="fk_decision_steps_prediction"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("prediction_id", "position", name="uq_decision_steps_position"),
    )
    op.create_table(
        "engine_events",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("pair", sa.String(20), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_index("ix_engine_events_kind", "engine_events", ["kind"])


def downgrade() -> None:
    op.drop_table("engine_events")
    op.drop_table("decision_steps")
    op.drop_table("predictions")
