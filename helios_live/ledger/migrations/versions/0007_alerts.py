"""Alerts: every delivery of an alert to a channel, with its outcome (docs/alerts.md).

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def key() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        key(),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(48), nullable=False),
        sa.Column("subject", sa.String(66), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", timestamp(), nullable=False),
        sa.Column("finished_at", timestamp(), nullable=False),
    )
    op.create_index("ix_alert_deliveries_raised_at", "alert_deliveries", ["raised_at"])
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_alert_id", "alert_deliveries")
    op.drop_index("ix_alert_deliveries_raised_at", "alert_deliveries")
    op.drop_table("alert_deliveries")
