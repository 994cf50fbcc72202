"""Tier 5 allocation: target weights, rebalancing events, and what a trim realised on a position.

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def key() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("reduced_pnl", sa.Float(), nullable=False, server_default=sa.text("0")))
    op.create_table(
        "allocation_targets",
        key(),
        sa.Column("computed_at", timestamp(), nullable=False),
        sa.Column("as_of", timestamp(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("fallback", sa.Text(), nullable=True),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
    )
    op.create_index("ix_allocation_targets_computed_at", "allocation_targets", ["computed_at"])
    op.create_table(
        "rebalancing_events",
        key(),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("targets_id", sa.BigInteger(), nullable=True),
        sa.Column("target_weights", sa.JSON(), nullable=False),
        sa.Column("weights_before", sa.JSON(), nullable=False),
        sa.Column("weights_after", sa.JSON(), nullable=False),
        sa.Column("orders", sa.JSON(), nullable=False),
    )
    op.create_index("ix_rebalancing_events_at", "rebalancing_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_rebalancing_events_at", "rebalancing_events")
    op.drop_table("rebalancing_events")
    op.drop_index("ix_allocation_targets_computed_at", "allocation_targets")
    op.drop_table("allocation_targets")
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("reduced_pnl")
