"""Trading: risk decisions, portfolio checks, positions, orders, fills, portfolio snapshots
and mode changes.

Written by hand and frozen, like 0001: it spells out its types instead of importing the models.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-16
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def big_id() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def id_column() -> sa.Column[int]:
    return sa.Column("id", big_id(), primary_key=True, autoincrement=True)


def prediction_id(name: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column[int]:
    foreign_key = sa.ForeignKey("predictions.id", ondelete=ondelete, name=name)
    return sa.Column("prediction_id", big_id(), foreign_key, nullable=nullable)


def floats(*names: str, nullable: bool = False) -> list[sa.Column[float]]:
    return [sa.Column(name, sa.Float(), nullable=nullable) for name in names]


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        id_column(),
        prediction_id("fk_risk_decisions_prediction"),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        *floats("probability"),
        *floats("daily_vol", nullable=True),
        sa.Column("vol_source", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        *floats("omega", "alpha", "beta", nullable=True),
        *floats("kelly_full", "kelly_fractional"),
        *floats("vol_adjusted", "drawdown_adjusted", nullable=True),
        *floats("cap", "fraction", "leverage"),
        *floats("stop_loss_pct", "take_profit_pct", nullable=True),
        *floats("max_hold_s", "equity", "drawdown"),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("prediction_id", name="uq_risk_decisions_prediction"),
    )
    op.create_table(
        "portfolio_checks",
        id_column(),
        prediction_id("fk_portfolio_checks_prediction"),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("violations", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.UniqueConstraint("prediction_id", name="uq_portfolio_checks_prediction"),
    )
    op.create_table(
        "positions",
        id_column(),
        sa.Column("key", sa.String(64), nullable=False),
        prediction_id("fk_positions_prediction", nullable=True, ondelete="SET NULL"),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("side", sa.String(5), nullable=False),
        sa.Column("status", sa.String(6), nullable=False),
        *floats("quantity", "entry_price", "margin", "leverage", "stop_loss_price", "take_profit_price"),
        sa.Column("opened_at", timestamp(), nullable=False),
        sa.Column("deadline", timestamp(), nullable=False),
        *floats("entry_fee"),
        *floats("exit_price", nullable=True),
        sa.Column("closed_at", timestamp(), nullable=True),
        sa.Column("close_reason", sa.String(16), nullable=True),
        *floats("exit_fee"),
        *floats("realised_pnl", nullable=True),
        sa.UniqueConstraint("key", name="uq_positions_key"),
    )
    op.create_index("ix_positions_status", "positions", ["status"])
    op.create_index("ix_positions_pair_opened_at", "positions", ["pair", "opened_at"])
    op.create_table(
        "orders",
        id_column(),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column(
            "position_key",
            sa.String(64),
            sa.ForeignKey("positions.key", name="fk_orders_position_key"),
            nullable=False,
        ),
        sa.Column("pair", sa.String(20), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("purpose", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        *floats("quantity"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_position_key", "orders", ["position_key"])
    op.create_table(
        "fills",
        id_column(),
        sa.Column(
            "client_order_id",
            sa.String(64),
            sa.ForeignKey("orders.client_order_id", name="fk_fills_client_order_id"),
            nullable=False,
        ),
        *floats("price", "quantity", "fee"),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("levels", sa.Integer(), nullable=False),
        sa.Column("filled_at", timestamp(), nullable=False),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_table(
        "portfolio_snapshots",
        id_column(),
        sa.Column("at", timestamp(), nullable=False),
        *floats("cash", "margin", "unrealised", "equity", "peak", "drawdown", "day_start_equity", "daily_pnl"),
        sa.Column("open_positions", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
    )
    op.create_index("ix_portfolio_snapshots_at", "portfolio_snapshots", ["at"])
    op.create_table(
        "mode_changes",
        id_column(),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("previous", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "mode_changes",
        "portfolio_snapshots",
        "fills",
        "orders",
        "positions",
        "portfolio_checks",
        "risk_decisions",
    ):
        op.drop_table(table)
