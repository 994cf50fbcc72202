"""The API's audit: refused requests (aggregated per client and minute) and operator actions.

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def key() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "api_audit",
        key(),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("principal", sa.String(64), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("via", sa.String(16), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
    )
    op.create_index("ix_api_audit_at", "api_audit", ["at"])
    op.create_index("ix_api_audit_kind", "api_audit", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_api_audit_kind", "api_audit")
    op.drop_index("ix_api_audit_at", "api_audit")
    op.drop_table("api_audit")
