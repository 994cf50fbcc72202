"""Tier 5 allocation's rows: the targets the batch side computes, the rebalances the engine
makes, and the predictions the next targets' views are built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from helios_core.allocation.targets import Targets
from helios_core.trading.orders import require_aware
from helios_live.ledger.models import AllocationTargetRow, FillRow, OrderRow, PredictionRow, RebalancingEventRow


@dataclass(frozen=True, slots=True)
class Rebalance:
    """One rebalance as the engine made it; `uid` names it, so writing it twice stores it once."""

    uid: str
    at: datetime
    reason: str  # DAILY, WEEKLY or EMERGENCY
    detail: str
    targets_id: int | None
    target_weights: Mapping[str, float]
    weights_before: Mapping[str, float]
    weights_after: Mapping[str, float]
    orders: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        require_aware("at", self.at)


def write_targets(connection: Connection, targets: Targets, source: str) -> int:
    row = {
        "computed_at": targets.computed_at,
        "as_of": targets.as_of,
        "source": source,
        "method": targets.method,
        "fallback": targets.fallback,
        "weights": dict(targets.weights),
        "inputs": dict(targets.inputs),
    }
    result = connection.execute(insert(AllocationTargetRow).values(**row))
    return int(result.inserted_primary_key[0])  # type: ignore[index]  # one row: one key


def latest_targets(connection: Connection) -> tuple[int, Targets] | None:
    # By the data they read, not when they ran: a recompute of an old day must not replace today's.
    order = (AllocationTargetRow.as_of.desc(), AllocationTargetRow.computed_at.desc(), AllocationTargetRow.id.desc())
    row = connection.execute(targets_query().order_by(*order).limit(1)).first()
    if row is None:
        return None
    targets = Targets(row.weights, row.computed_at, row.as_of, row.method, row.fallback, row.inputs)
    return row.id, targets


def targets_query() -> Select[Any]:
    return select(AllocationTargetRow.__table__)


def write_rebalance(connection: Connection, rebalance: Rebalance) -> None:
    row = {
        "uid": rebalance.uid,
        "at": rebalance.at,
        "reason": rebalance.reason,
        "detail": rebalance.detail,
        "targets_id": rebalance.targets_id,
        "target_weights": dict(rebalance.target_weights),
        "weights_before": dict(rebalance.weights_before),
        "weights_after": dict(rebalance.weights_after),
        "orders": [dict(o) for o in rebalance.orders],
    }
    table = RebalancingEventRow.__table__
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).values(**row).on_conflict_do_nothing(index_elements=["uid"]))


def rebalances_query(reason: str | None) -> Select[Any]:
    query = select(RebalancingEventRow.__table__)
    return query if reason is None else query.where(RebalancingEventRow.reason == reason)


def trimmed(connection: Connection) -> dict[str, tuple[float, float]]:
    """Per position key, the quantity its trims sold and the fees they paid (from their fills)."""
    query = (
        select(OrderRow.position_key, func.sum(FillRow.quantity), func.sum(FillRow.fee))
        .join(OrderRow, OrderRow.client_order_id == FillRow.client_order_id)
        .where(OrderRow.purpose == "REDUCE")
        .group_by(OrderRow.position_key)
    )
    return {key: (float(quantity), float(fee)) for key, quantity, fee in connection.execute(query)}


def probabilities(connection: Connection, since: datetime, until: datetime) -> list[tuple[str, float, float, float]]:
    """(pair, p_buy, p_sell, p_hold) of the decisions on candles in [since, until)."""
    require_aware("since", since)
    require_aware("until", until)
    columns = (PredictionRow.pair, PredictionRow.p_buy, PredictionRow.p_sell, PredictionRow.p_hold)
    query = select(*columns).where(PredictionRow.candle_ts >= since, PredictionRow.candle_ts < until)
    rows = connection.execute(query.order_by(PredictionRow.candle_ts, PredictionRow.id))
    return [(r.pair, r.p_buy, r.p_sell, r.p_hold) for r in rows]
