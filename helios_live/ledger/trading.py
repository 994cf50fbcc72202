"""The writes `Ledger.write` makes (predictions and everything trading made of them) and the
queries behind the ledger's trading reads and pages, each on a connection the ledger opened
(and so in its transaction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import CloseReason, PositionSide, PositionStatus, TradingMode
from helios_core.trading.orders import Order, require_aware
from helios_core.trading.position import Execution, Position
from helios_live.ledger.models import (
    Base,
    FillRow,
    ModeChangeRow,
    OrderRow,
    PortfolioCheckRow,
    PortfolioSnapshotRow,
    PositionRow,
    PredictionRow,
    RiskDecisionRow,
)
from helios_live.ledger.records import DecisionRef, PredictionRecord, Unit

OPEN, CLOSED = PositionStatus.OPEN, PositionStatus.CLOSED
# What a close changes; the rest of a position is fixed when it opens.
CLOSE_FIELDS = ("status", "exit_price", "closed_at", "close_reason", "exit_fee", "realised_pnl")
CHECK_FIELDS = ("passed", "violations", "metrics")
CHILDREN = frozenset({"steps", "risk", "check", "execution"})  # stored in tables of their own


def _row(record: Any) -> dict[str, Any]:
    """A record's fields, shallow: `dataclasses.asdict` deep-copies every value, and on the
    hot path that copying cost a third of the write (benchmarks/bench_decision.py)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _finite(value: Any) -> Any:
    # NaN means "unknown" to the risk code (no volatility estimate yet). SQLite would store it
    # as NULL anyway and JSON has no NaN at all, so every backend stores it as NULL.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _insert(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:  # one executemany per table, however many rows
        connection.execute(insert(_table(table)), rows)


def insert_predictions(connection: Connection, records: Sequence[PredictionRecord]) -> list[int | None]:
    """Insert the decisions not stored yet, with their steps; their ids, None for one already stored."""
    if not records:
        return []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    # One multi-row statement and one for all steps: per-statement overhead, not the
    # database, dominates a ten-pair minute (benchmarks/bench_stream.py).
    table = _table("predictions")
    statement = (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=["pair", "candle_ts", "model_version"])
        .returning(table.c.id, table.c.pair, table.c.candle_ts, table.c.model_version)
    )
    rows = connection.execute(statement, [_prediction_row(r) for r in records])
    inserted = {(pair, ts, version): row_id for row_id, pair, ts, version in rows}
    ids = [inserted.get((r.pair, r.candle_ts, r.model_version)) for r in records]
    steps = [
        {"prediction_id": row_id, "position": i, **_row(step)}
        for record, row_id in zip(records, ids, strict=True)
        if row_id is not None
        for i, step in enumerate(record.steps)
    ]
    if steps:
        connection.execute(insert(_table("decision_steps")), steps)
    return ids


def _prediction_row(record: PredictionRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name not in CHILDREN}


def write_units(connection: Connection, units: Sequence[Unit]) -> list[list[int | None]]:
    """Store every unit in one transaction, each table's rows in the units' order (so that the
    same units give the same row ids however they were grouped); the prediction ids per unit."""
    predictions = [p for u in units for p in u.predictions]
    ids = insert_predictions(connection, predictions)
    insert_assessments(connection, predictions, ids)
    per_unit: list[list[int | None]] = []
    opened: list[tuple[int | None, Execution]] = []
    orders: list[Execution] = []
    closes: list[Execution] = []
    position = 0
    for unit in units:
        unit_ids = ids[position : position + len(unit.predictions)]
        position += len(unit.predictions)
        per_unit.append(unit_ids)
        for record, row_id in zip(unit.predictions, unit_ids, strict=True):
            if row_id is not None and record.execution is not None:
                opened.append((row_id, record.execution))
                orders.append(record.execution)
        for decision, execution in unit.opens:
            opened.append((decision_id(connection, decision), execution))
            orders.append(execution)
        closes += unit.closes
        orders += unit.closes
    insert_positions(connection, opened)
    refused = close_positions(connection, closes)
    if refused:
        raise Refused(refused)
    insert_orders(connection, orders)
    insert_snapshots(connection, [s for u in units for s in u.snapshots])
    return per_unit


class Refused(Exception):  # noqa: N818 -- a reason, turned into LedgerConflict by the ledger
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys


def insert_assessments(connection: Connection, records: Sequence[PredictionRecord], ids: Sequence[int | None]) -> None:
    """Store the risk decision and portfolio check of each prediction just inserted (id not None)."""
    stored = [(row_id, r) for r, row_id in zip(records, ids, strict=True) if row_id is not None]
    risks = [
        {
            "prediction_id": row_id,
            "pair": r.pair,
            "created_at": r.decided_at,
            **{name: _finite(value) for name, value in _row(r.risk).items()},
        }
        for row_id, r in stored
        if r.risk is not None
    ]
    checks = [
        {
            "prediction_id": row_id,
            "passed": r.check.passed,
            "violations": list(r.check.violations),
            "metrics": {name: _finite(float(value)) for name, value in r.check.metrics.items()},
            "created_at": r.decided_at,
        }
        for row_id, r in stored
        if r.check is not None
    ]
    _insert(connection, "risk_decisions", risks)
    _insert(connection, "portfolio_checks", checks)


def insert_positions(connection: Connection, opened: Sequence[tuple[int | None, Execution]]) -> None:
    """Insert opened positions, each with the id of the prediction that opened it (or None)."""
    _insert(connection, "positions", [{**_row(e.position), "prediction_id": row_id} for row_id, e in opened])


def decision_id(connection: Connection, decision: DecisionRef | None) -> int | None:
    """The prediction row of a decision, or None (no decision, or not stored)."""
    if decision is None:
        return None
    query = select(PredictionRow.id).where(
        PredictionRow.pair == decision.pair,
        PredictionRow.candle_ts == decision.candle_ts,
        PredictionRow.model_version == decision.model_version,
    )
    return connection.execute(query).scalar_one_or_none()


def close_positions(connection: Connection, closes: Sequence[Execution]) -> list[str]:
    """Bring each closed position's row to the execution's state; returns the keys of those that
    were not open (or not there), which the caller must refuse by rolling back."""
    # One statement per close: its row count is the only portable proof that it met an OPEN
    # row (psycopg2 reports no reliable count for a batched UPDATE), and closes are rare.
    refused = []
    statement = (
        update(PositionRow)
        .where(PositionRow.key == bindparam("match_key"), PositionRow.status == OPEN)
        .values({name: bindparam(f"new_{name}") for name in CLOSE_FIELDS})
    )
    for execution in closes:
        position = execution.position
        values = {f"new_{name}": getattr(position, name) for name in CLOSE_FIELDS}
        if connection.execute(statement, {"match_key": position.key, **values}).rowcount != 1:
            refused.append(position.key)
    return refused


def order_row(order: Order) -> dict[str, Any]:
    intent = order.intent
    return {
        "client_order_id": intent.client_order_id,
        "position_key": intent.position_key,
        "pair": intent.pair,
        "side": intent.side,
        "purpose": intent.purpose,
        "mode": intent.mode,
        "quantity": intent.quantity,
        "status": order.status,
        "reason": order.reason or intent.reason,
        "created_at": intent.created_at,
    }


def insert_orders(connection: Connection, executions: Sequence[Execution]) -> None:
    """Store the executions' orders, then their fills (a fill references its order)."""
    _insert(connection, "orders", [order_row(e.order) for e in executions])
    _insert(connection, "fills", [_row(f) for e in executions for f in e.order.fills])


def insert_snapshots(connection: Connection, snapshots: Sequence[PortfolioSnapshot]) -> None:
    _insert(connection, "portfolio_snapshots", [_row(s) for s in snapshots])


def open_positions(connection: Connection) -> list[Position]:
    """Every open position as the engine recorded it, oldest first."""
    columns = [_table("positions").c[f.name] for f in fields(Position)]
    query = select(*columns).where(PositionRow.status == OPEN).order_by(PositionRow.opened_at, PositionRow.id)
    return [_position(row._mapping) for row in connection.execute(query)]


def closed_positions(connection: Connection) -> list[Position]:
    """Every closed position, in the order they closed (a backtest's trades)."""
    columns = [_table("positions").c[f.name] for f in fields(Position)]
    query = select(*columns).where(PositionRow.status != OPEN).order_by(PositionRow.closed_at, PositionRow.id)
    return [_position(row._mapping) for row in connection.execute(query)]


def _position(row: Any) -> Position:
    reason = row["close_reason"]
    return Position(
        **{
            **row,
            "side": PositionSide(row["side"]),
            "status": PositionStatus(row["status"]),
            "close_reason": CloseReason(reason) if reason is not None else None,
        }
    )


def account(connection: Connection) -> dict[str, float]:
    """Realised P&L of closed positions (net of both fees), entry fees held by open ones, and
    how many positions have closed."""
    closed = PositionRow.status == CLOSED
    query = select(
        func.coalesce(func.sum(case((closed, PositionRow.realised_pnl))), 0.0),
        func.coalesce(func.sum(case((PositionRow.status == OPEN, PositionRow.entry_fee))), 0.0),
        func.count(case((closed, PositionRow.id))),
    )
    realised, entry_fees, count = connection.execute(query).one()
    return {"realised": float(realised), "open_entry_fees": float(entry_fees), "closed": int(count)}


def latest_snapshot(connection: Connection) -> PortfolioSnapshot | None:
    """The newest snapshot by its time (by id between equal times)."""
    columns = [_table("portfolio_snapshots").c[f.name] for f in fields(PortfolioSnapshot)]
    query = select(*columns).order_by(PortfolioSnapshotRow.at.desc(), PortfolioSnapshotRow.id.desc())
    row = connection.execute(query.limit(1)).first()
    return None if row is None else PortfolioSnapshot(**row._mapping)


def decided_until(connection: Connection, pair: str) -> datetime | None:
    """The open time of the newest candle `pair` was decided on."""
    query = select(func.max(PredictionRow.candle_ts)).where(PredictionRow.pair == pair)
    return connection.execute(query).scalar_one()


def mode(connection: Connection) -> TradingMode:
    """The mode of the latest change, PAPER before the first."""
    query = select(ModeChangeRow.mode).order_by(ModeChangeRow.id.desc()).limit(1)
    return TradingMode(connection.execute(query).scalar_one_or_none() or TradingMode.PAPER)


def positions_query(status: str | None, pair: str | None) -> Select[Any]:
    query = select(_table("positions"))
    if status is not None:
        query = query.where(PositionRow.status == status)
    if pair is not None:
        query = query.where(PositionRow.pair == pair)
    return query


def orders_query(pair: str | None, position_key: str | None) -> Select[Any]:
    query = select(_table("orders"))
    if pair is not None:
        query = query.where(OrderRow.pair == pair)
    if position_key is not None:
        query = query.where(OrderRow.position_key == position_key)
    return query


def fills_query(pair: str | None) -> Select[Any]:
    query = select(_table("fills"), OrderRow.pair, OrderRow.side, OrderRow.purpose, OrderRow.position_key).join(
        OrderRow, OrderRow.client_order_id == FillRow.client_order_id
    )
    return query if pair is None else query.where(OrderRow.pair == pair)


def risk_query(pair: str | None, approved: bool | None) -> Select[Any]:
    checks = [getattr(PortfolioCheckRow, name).label(f"check_{name}") for name in CHECK_FIELDS]
    query = (
        select(_table("risk_decisions"), PredictionRow.candle_ts, *checks)
        .join(PredictionRow, PredictionRow.id == RiskDecisionRow.prediction_id)
        .outerjoin(PortfolioCheckRow, PortfolioCheckRow.prediction_id == RiskDecisionRow.prediction_id)
    )
    if pair is not None:
        query = query.where(RiskDecisionRow.pair == pair)
    if approved is not None:
        query = query.where(RiskDecisionRow.approved == approved)
    return query


def risk_item(row: Any) -> dict[str, Any]:
    """A risk decision with its prediction's candle_ts and its portfolio check nested (or None)."""
    check = {name: row._mapping[f"check_{name}"] for name in CHECK_FIELDS}
    item = {key: value for key, value in row._mapping.items() if not key.startswith("check_")}
    item["check"] = None if check["passed"] is None else check
    return item


def snapshots_query(since: datetime | None) -> Select[Any]:
    query = select(_table("portfolio_snapshots"))
    if since is not None:
        require_aware("since", since)
        query = query.where(PortfolioSnapshotRow.at >= since)
    return query
