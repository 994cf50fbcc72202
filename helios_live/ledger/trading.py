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

from helios_live.ledger.models import (
    Base,
    Fill,
    ModeChange,
    Order,
    PortfolioCheck,
    PortfolioSnapshot,
    Position,
    Prediction,
    PredictionRecord,
    RiskDecision,
    require_aware,
)
from helios_live.ledger.records import PositionRecord, SnapshotRecord, TradeRecord

OPEN, CLOSED = "OPEN", "CLOSED"
# What a close changes; the rest of a position is fixed when it opens.
CLOSE_FIELDS = ("status", "exit_price", "closed_at", "close_reason", "exit_fee", "realised_pnl")
CHECK_FIELDS = ("passed", "violations", "metrics")
CHILDREN = frozenset({"steps", "risk", "check", "trade"})  # stored in tables of their own


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


def insert_decisions(
    connection: Connection, records: Sequence[PredictionRecord], ids: Sequence[int | None]
) -> list[TradeRecord]:
    """Store the risk decision, portfolio check and opened position of each prediction just
    inserted (id not None); returns their trades, whose orders and fills go in with the closes'."""
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
    trades = [(row_id, r.trade) for row_id, r in stored if r.trade is not None]
    _insert(connection, "risk_decisions", risks)
    _insert(connection, "portfolio_checks", checks)
    _insert(connection, "positions", [{**_row(t.position), "prediction_id": row_id} for row_id, t in trades])
    return [t for _, t in trades]


def close_positions(connection: Connection, closes: Sequence[TradeRecord]) -> list[str]:
    """Bring each closed position's row to the record's state; returns the keys of those that
    were not open (or not there), which the caller must refuse by rolling back."""
    # One statement per close: its row count is the only portable proof that it met an OPEN
    # row (psycopg2 reports no reliable count for a batched UPDATE), and closes are rare.
    refused = []
    statement = (
        update(Position)
        .where(Position.key == bindparam("match_key"), Position.status == OPEN)
        .values({name: bindparam(f"new_{name}") for name in CLOSE_FIELDS})
    )
    for trade in closes:
        position = trade.position
        values = {f"new_{name}": getattr(position, name) for name in CLOSE_FIELDS}
        if connection.execute(statement, {"match_key": position.key, **values}).rowcount != 1:
            refused.append(position.key)
    return refused


def insert_trades(connection: Connection, trades: Sequence[TradeRecord]) -> None:
    """Store the trades' orders, then their fills (a fill references its order)."""
    _insert(connection, "orders", [_row(t.order) for t in trades])
    _insert(connection, "fills", [_row(t.fill) for t in trades if t.fill is not None])


def insert_snapshots(connection: Connection, snapshots: Sequence[SnapshotRecord]) -> None:
    _insert(connection, "portfolio_snapshots", [_row(s) for s in snapshots])


def open_positions(connection: Connection) -> list[PositionRecord]:
    """Every open position as the engine recorded it, oldest first."""
    columns = [_table("positions").c[f.name] for f in fields(PositionRecord)]
    query = select(*columns).where(Position.status == OPEN).order_by(Position.opened_at, Position.id)
    return [PositionRecord(**row._mapping) for row in connection.execute(query)]


def account(connection: Connection) -> dict[str, float]:
    """Realised P&L of closed positions (net of both fees), entry fees held by open ones, and
    how many positions have closed."""
    closed = Position.status == CLOSED
    query = select(
        func.coalesce(func.sum(case((closed, Position.realised_pnl))), 0.0),
        func.coalesce(func.sum(case((Position.status == OPEN, Position.entry_fee))), 0.0),
        func.count(case((closed, Position.id))),
    )
    realised, entry_fees, count = connection.execute(query).one()
    return {"realised": float(realised), "open_entry_fees": float(entry_fees), "closed": int(count)}


def snapshot(connection: Connection, since: datetime | None = None) -> SnapshotRecord | None:
    """The latest snapshot, or with `since` the earliest taken at or after it."""
    columns = [_table("portfolio_snapshots").c[f.name] for f in fields(SnapshotRecord)]
    query = select(*columns)
    if since is None:
        query = query.order_by(PortfolioSnapshot.at.desc(), PortfolioSnapshot.id.desc())
    else:
        require_aware("since", since)
        query = query.where(PortfolioSnapshot.at >= since).order_by(PortfolioSnapshot.at, PortfolioSnapshot.id)
    row = connection.execute(query.limit(1)).first()
    return None if row is None else SnapshotRecord(**row._mapping)


def decided_until(connection: Connection, pair: str) -> datetime | None:
    """The open time of the newest candle `pair` was decided on."""
    query = select(func.max(Prediction.candle_ts)).where(Prediction.pair == pair)
    return connection.execute(query).scalar_one()


def mode(connection: Connection) -> str:
    """The mode of the latest change, PAPER before the first."""
    query = select(ModeChange.mode).order_by(ModeChange.id.desc()).limit(1)
    return connection.execute(query).scalar_one_or_none() or "PAPER"


def positions_query(status: str | None, pair: str | None) -> Select[Any]:
    query = select(_table("positions"))
    if status is not None:
        query = query.where(Position.status == status)
    if pair is not None:
        query = query.where(Position.pair == pair)
    return query


def orders_query(pair: str | None, position_key: str | None) -> Select[Any]:
    query = select(_table("orders"))
    if pair is not None:
        query = query.where(Order.pair == pair)
    if position_key is not None:
        query = query.where(Order.position_key == position_key)
    return query


def fills_query(pair: str | None) -> Select[Any]:
    query = select(_table("fills"), Order.pair, Order.side, Order.purpose, Order.position_key).join(
        Order, Order.client_order_id == Fill.client_order_id
    )
    return query if pair is None else query.where(Order.pair == pair)


def risk_query(pair: str | None, approved: bool | None) -> Select[Any]:
    checks = [getattr(PortfolioCheck, name).label(f"check_{name}") for name in CHECK_FIELDS]
    query = (
        select(_table("risk_decisions"), Prediction.candle_ts, *checks)
        .join(Prediction, Prediction.id == RiskDecision.prediction_id)
        .outerjoin(PortfolioCheck, PortfolioCheck.prediction_id == RiskDecision.prediction_id)
    )
    if pair is not None:
        query = query.where(RiskDecision.pair == pair)
    if approved is not None:
        query = query.where(RiskDecision.approved == approved)
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
        query = query.where(PortfolioSnapshot.at >= since)
    return query
