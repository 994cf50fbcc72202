"""Surveillance: oracle and price deviations, liquidations and the patterns found in them,
vault snapshots and security events.

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def head(uid: str = "uid", length: int = 64) -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column(uid, sa.String(length), nullable=False, unique=True),
    ]


def upgrade() -> None:
    op.create_table(
        "oracle_deviations",
        *head(),
        sa.Column("ts", timestamp(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("reference", sa.Float(), nullable=True),
        sa.Column("deviation_pct", sa.Float(), nullable=True),
        sa.Column("severity", sa.String(8), nullable=True),
        sa.Column("onset", timestamp(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("sustained", sa.Boolean(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("stale", sa.Integer(), nullable=False),
        sa.Column("bad", sa.Integer(), nullable=False),
    )
    op.create_index("ix_oracle_deviations_asset_ts", "oracle_deviations", ["asset", "ts"])
    op.create_table(
        "liquidation_patterns",
        *head(),
        sa.Column("ts", timestamp(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("pattern", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("longs", sa.Integer(), nullable=False),
        sa.Column("shorts", sa.Integer(), nullable=False),
        sa.Column("notional", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(8), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("first", timestamp(), nullable=True),
    )
    op.create_index("ix_liquidation_patterns_ts", "liquidation_patterns", ["ts"])
    op.create_table(
        "liquidations",
        *head(),
        sa.Column("ts", timestamp(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("size", sa.Float(), nullable=False),
        sa.Column("notional", sa.Float(), nullable=False),
        sa.Column("user", sa.String(66), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=True),
    )
    op.create_index("ix_liquidations_ts", "liquidations", ["ts"])
    op.create_table(
        "vault_snapshots",
        *head(),
        sa.Column("ts", timestamp(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("vault", sa.String(66), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("equity_change_pct", sa.Float(), nullable=True),
        sa.Column("pnl_change", sa.Float(), nullable=True),
        sa.Column("z_equity", sa.Float(), nullable=True),
        sa.Column("z_pnl", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("severity", sa.String(8), nullable=True),
    )
    op.create_index("ix_vault_snapshots_ts", "vault_snapshots", ["ts"])
    op.create_table(
        "security_events",
        *head("event_id", 32),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(66), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("peak", sa.String(8), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("first_seen", timestamp(), nullable=False),
        sa.Column("last_seen", timestamp(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=True),
        sa.Column("ended", timestamp(), nullable=True),
    )
    op.create_index("ix_security_events_last_seen", "security_events", ["last_seen"])
    op.create_index("ix_security_events_asset", "security_events", ["asset"])


def downgrade() -> None:
    for table in ("security_events", "vault_snapshots", "liquidations", "liquidation_patterns", "oracle_deviations"):
        op.drop_table(table)  # their indexes go with them
