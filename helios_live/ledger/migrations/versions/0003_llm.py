"""Tier 4's audit: the market context each approver read and its decision (llm_decisions).

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def big_id() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def id_column() -> sa.Column[int]:
    return sa.Column("id", big_id(), primary_key=True, autoincrement=True)


def prediction_id(name: str) -> sa.Column[int]:
    foreign_key = sa.ForeignKey("predictions.id", ondelete="CASCADE", name=name)
    return sa.Column("prediction_id", big_id(), foreign_key, nullable=False)


def strings(length: int, *names: str) -> list[sa.Column[str]]:
    return [sa.Column(name, sa.String(length), nullable=False) for name in names]


def integers(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "market_context_snapshots",
        id_column(),
        prediction_id("fk_market_context_snapshots_prediction"),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("candle_ts", timestamp(), nullable=False),
        sa.Column("context_hash", sa.String(64), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.UniqueConstraint("prediction_id", name="uq_market_context_snapshots_prediction"),
    )
    op.create_index("ix_market_context_snapshots_context_hash", "market_context_snapshots", ["context_hash"])
    op.create_table(
        "llm_decisions",
        id_column(),
        prediction_id("fk_llm_decisions_prediction"),
        sa.Column(
            "context_id",
            big_id(),
            sa.ForeignKey("market_context_snapshots.id", ondelete="CASCADE", name="fk_llm_decisions_context"),
            nullable=False,
        ),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("decided_at", timestamp(), nullable=False),
        sa.Column("approver", sa.String(32), nullable=False),
        *strings(16, "source", "verdict"),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        *strings(64, "prompt_hash", "context_hash", "replay_key"),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        *integers("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens"),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("clamps", sa.Text(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.UniqueConstraint("prediction_id", name="uq_llm_decisions_prediction"),
    )
    op.create_index("ix_llm_decisions_replay_key", "llm_decisions", ["replay_key"])
    op.create_index("ix_llm_decisions_decided_at", "llm_decisions", ["decided_at"])


def downgrade() -> None:
    op.drop_table("llm_decisions")  # its indexes go with it
    op.drop_table("market_context_snapshots")
