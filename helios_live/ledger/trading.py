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

from sqlalchemy import Connection, Select, Table, case, func, select

from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import CloseReason, PositionSide, PositionStatus, TradingMode
from helios_core.trading.orders import Order, require_aware
from helios_core.trading.position import Execution, Position
from helios_live.ledger import llm
from helios_live.ledger.bulk import Bulk
from helios_live.ledger.models import (
    Base,
    FillRow,
    LlmDecisionRow,
    ModeChangeRow,
    OrderRow,
    PortfolioCheckRow,
    PortfolioSnapshotRow,
    PositionRow,
    PredictionRow,
    RiskDecisionRow,
)
from helios_live.ledger.records import DecisionRef, Outcome, PredictionRecord, Unit
from helios_live.ledger.spool import Event

OPEN, CLOSED = PositionStatus.OPEN, PositionStatus.CLOSED
# What a close changes; the rest of a position is fixed when it opens.
# A trim (OrderPurpose.REDUCE) changes what the position still holds; a close leaves those as they were.
CLOSE_FIELDS = ("status", "exit_price", "closed_at", "close_reason", "exit_fee", "realised_pnl")
TRIM_FIELDS = ("quantity", "margin", "entry_fee", "reduced_pnl")
CHECK_FIELDS = ("passed", "violations", "metrics")
CHILDREN = frozenset({"steps", "risk", "check", "execution", "llm"})  # stored in tables of their own


def _row(record: Any) -> dict[str, Any]:
    """A record's fields, shallow: `dataclasses.asdict` deep-copies every value, and on the
    hot path that copying cost a third of the write (benchmarks/bench_decision.py)."""
    return {name: getattr(record, name) for name in _names(type(record))}


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(kind: type) -> tuple[str, ...]:
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _finite(value: Any) -> Any:
    # NaN means "unknown" to the risk code (no volatility estimate yet). SQLite would store it
    # as NULL anyway and JSON has no NaN at all, so every backend stores it as NULL.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def insert_predictions(bulk: Bulk, records: Sequence[PredictionRecord]) -> list[int | None]:
    """Insert the decisions not stored yet, with their steps; their ids, None for one already stored."""
    if not records:
        return []
    rows = bulk.insert_returning(
        "predictions",
        [_prediction_row(r) for r in records],
        "ON CONFLICT (pair, candle_ts, model_version) DO NOTHING RETURNING id, pair, candle_ts, model_version",
    )
    inserted = {(pair, ts, version): row_id for row_id, pair, ts, version in rows}
    ids = [
        inserted.get((r.pair, bulk.processed("predictions", "candle_ts", r.candle_ts), r.model_version))
        for r in records
    ]
    steps = [
        {"prediction_id": row_id, "position": i, **_row(step)}
        for record, row_id in zip(records, ids, strict=True)
        if row_id is not None
        for i, step in enumerate(record.steps)
    ]
    bulk.insert("decision_steps", steps)
    return ids


def _prediction_row(record: PredictionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _names(PredictionRecord) if name not in CHILDREN}


def write_units(
    connection: Connection, units: Sequence[Unit], outcomes: Sequence[Outcome] = (), events: Sequence[Event] = ()
) -> tuple[list[list[int | None]], list[int | None]]:
    """Store every unit in one transaction, each table's rows in the units' order (so that the
    same units give the same row ids however they were grouped), then score `outcomes` (which
    may name decisions of these units by their key); the prediction ids per unit, and the
    outcomes' prediction ids (None: scored nothing)."""
    bulk = Bulk(connection)
    predictions = [p for u in units for p in u.predictions]
    ids = insert_predictions(bulk, predictions)
    insert_assessments(bulk, predictions, ids)
    llm.insert_decisions(bulk, predictions, ids)
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
            bulk.flush()  # the lookup below reads through SQLAlchemy, after what is waiting
            opened.append((decision_id(connection, decision), execution))
            orders.append(execution)
        closes += unit.closes
        orders += unit.closes
    bulk.insert("positions", [{**_row(e.position), "prediction_id": row_id} for row_id, e in opened])
    refused = close_positions(bulk, closes)
    if refused:
        raise Refused(refused)
    insert_orders(bulk, orders)
    bulk.insert("portfolio_snapshots", [_row(s) for u in units for s in u.snapshots])
    scored = fill_outcomes(bulk, outcomes)
    bulk.insert("engine_events", [_row(e) for e in events])
    bulk.flush()
    return per_unit, scored


class Refused(Exception):  # noqa: N818 -- a reason, turned into LedgerConflict by the ledger
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys


def insert_assessments(bulk: Bulk, records: Sequence[PredictionRecord], ids: Sequence[int | None]) -> None:
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
    bulk.insert("risk_decisions", risks)
    bulk.insert("portfolio_checks", checks)


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


def close_positions(bulk: Bulk, closes: Sequence[Execution]) -> list[str]:
    """Bring each closed position's row to the execution's state; returns the keys of those that
    were not open (or not there, or closed twice here), which the caller must refuse by rolling back."""
    keys = [e.position.key for e in closes]
    # Twice in one batch (two closes, or a trim and the close after it) is refused here: one
    # statement cannot apply both in order; the writer then lands the units one by one.
    twice = {key for key in keys if keys.count(key) > 1}
    names = CLOSE_FIELDS + TRIM_FIELDS
    rows = [{**{name: getattr(e.position, name) for name in names}, "key": e.position.key} for e in closes]
    # The status condition is the proof that each close met an OPEN row.
    updated = bulk.update_returning("positions", rows, ("key",), ("status", "= 'OPEN'"), "id")
    return [key for key, found in zip(keys, updated, strict=True) if len(found) != 1 or key in twice]


def fill_outcomes(bulk: Bulk, outcomes: Sequence[Outcome]) -> list[int | None]:
    """Score predictions, by id or by key; one that already has an outcome keeps it. For each
    outcome, the id of the prediction it scored, or None."""
    found: list[int | None] = [None] * len(outcomes)
    for by_key, where in ((False, ("id",)), (True, ("pair", "candle_ts", "model_version"))):
        batch = [(i, o) for i, o in enumerate(outcomes) if (o.ref is not None) == by_key]
        rows = [
            {
                "actual_outcome": o.actual_outcome,
                "outcome_return": o.outcome_return,
                **(o.ref._asdict() if o.ref is not None else {"id": o.prediction_id}),
            }
            for _, o in batch
        ]
        unscored = ("actual_outcome", "IS NULL")
        equals = ("correct", "prediction", "actual_outcome")
        updated = bulk.update_returning("predictions", rows, where, unscored, "id", equals)
        for (i, _), returned in zip(batch, updated, strict=True):
            found[i] = returned[0][0] if returned else None
    return found


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


def insert_orders(bulk: Bulk, executions: Sequence[Execution]) -> None:
    """Store the executions' orders, then their fills (a fill references its order)."""
    orders = [o for e in executions for o in (*e.earlier, e.order)]
    bulk.insert("orders", [order_row(o) for o in orders])
    bulk.insert("fills", [_row(f) for o in orders for f in o.fills])


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
    """Realised P&L of closed positions (net of both fees) and of the trims of open ones, entry
    fees held by open ones, and how many positions have closed."""
    closed = PositionRow.status == CLOSED
    query = select(
        func.coalesce(func.sum(case((closed, PositionRow.realised_pnl), else_=PositionRow.reduced_pnl)), 0.0),
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
    """Positions, each with the Tier 4 decision of the prediction that opened it (None where
    there was none): see `position_item`."""
    query = select(
        _table("positions"),
        LlmDecisionRow.id.label("llm_decision_id"),
        LlmDecisionRow.verdict.label("llm_verdict"),
        LlmDecisionRow.answer.label("llm_answer"),
        LlmDecisionRow.failure.label("llm_failure"),
    ).outerjoin(LlmDecisionRow, LlmDecisionRow.prediction_id == PositionRow.prediction_id)
    if status is not None:
        query = query.where(PositionRow.status == status)
    if pair is not None:
        query = query.where(PositionRow.pair == pair)
    return query


def position_item(row: Any) -> dict[str, Any]:
    """A position with `llm_decision_id`, `llm_verdict` and a short `explanation` (the answer's
    reasons, or the failure) of the decision that opened it, each None without one."""
    item = dict(row._mapping)
    item["explanation"] = llm.explanation(item.pop("llm_answer"), item.pop("llm_failure"))
    return item


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
