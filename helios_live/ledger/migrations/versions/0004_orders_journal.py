"""The order journal (each order's intent before its request is sent, and its transitions) and
the record of reconciliations between the exchange and the ledger.

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0004
Revises: 0003
Create Date: 2026-06-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def big_id() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def id_column() -> sa.Column[int]:
    return sa.Column("id", big_id(), primary_key=True, autoincrement=True)


def fill_columns() -> list[sa.Column[Any]]:
    """Where an order stands: the exchange's id, the cumulative fill and fee."""
    return [
        sa.Column("venue_order_id", sa.Text(), nullable=True),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("average_price", sa.Float(), nullable=True),
        sa.Column("fee", sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "order_journal",
        id_column(),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("position_key", sa.String(64), nullable=False),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("purpose", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("time_in_force", sa.String(16), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("opening", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *fill_columns(),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.UniqueConstraint("client_order_id", name="uq_order_journal_client_order_id"),
    )
    op.create_index("ix_order_journal_status", "order_journal", ["status"])
    op.create_index("ix_order_journal_pair", "order_journal", ["pair"])
    op.create_table(
        "order_transitions",
        id_column(),
        sa.Column(
            "client_order_id",
            sa.String(64),
            sa.ForeignKey("order_journal.client_order_id", name="fk_order_transitions_client_order_id"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        *fill_columns(),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_order_transitions_client_order_id", "order_transitions", ["client_order_id"])
    op.create_table(
        "reconciliations",
        id_column(),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("mismatches", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", timestamp(), nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reconciliations")
    op.drop_table("order_transitions")  # its index goes with it
    op.drop_table("order_journal")
