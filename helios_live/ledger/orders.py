"""The order journal in the ledger: each order's intent, committed before its request is sent
(`order_journal`), and every transition it goes through after (`order_transitions`), so that a
process killed between the intent and the exchange's acknowledgement finds on restart every order
whose outcome it does not know (`unfinished`). Beside it, the record of each reconciliation of
the exchange's account with the ledger (`reconciliations`), which an operator acknowledges.

The writes and queries here run on a connection the ledger opened (and so in its transaction);
`Ledger` maps what they raise to its own errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, insert, select, update

from helios_core.trading.orders import require_aware
from helios_live.ledger.models import Base, OrderJournalRow, OrderTransitionRow, ReconciliationRow

TERMINAL = ("FILLED", "CANCELLED", "FAILED", "EXPIRED")
STATUSES = ("NEW", "ACCEPTED", "PARTIALLY_FILLED", *TERMINAL, "UNKNOWN")  # UNKNOWN: sent, outcome not known yet
SIDES = ("BUY", "SELL")
PURPOSES = ("OPEN", "CLOSE", "REDUCE")
MODES = ("PAPER", "SHADOW", "LIVE")
ORDER_TYPES = ("MARKET", "LIMIT")
REQUEST_KEYS = frozenset({"verb", "path", "body"})  # never headers: they carry the key and the signature


def _json(name: str, value: Any) -> None:
    """Refuse what cannot be stored as strict JSON (a datetime, NaN) before it reaches the database."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON (no NaN, datetimes as ISO strings): {exc}") from exc


def _one_of(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _finite(name: str, value: float, *, positive: bool = False) -> None:
    if not math.isfinite(value) or (value <= 0.0 if positive else value < 0.0):
        raise ValueError(f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value}")


@dataclass(frozen=True, slots=True)
class OrderIntentRecord:
    """An order as it is about to be sent: written (committed) before its request leaves."""

    client_order_id: str
    position_key: str
    pair: str
    side: str  # BUY | SELL
    purpose: str  # OPEN | CLOSE
    mode: str  # PAPER | SHADOW | LIVE
    order_type: str  # MARKET | LIMIT
    quantity: float  # base amount, as rounded for the venue
    price: float | None  # limit price, None for market
    time_in_force: str | None
    # {"verb", "path", "body"} as it would be / was sent; never headers, keys or secrets
    request: dict[str, Any]
    # for OPEN: {"margin", "leverage", "stop_loss_pct", "take_profit_pct",
    #            "decision": {"pair", "candle_ts" (ISO), "model_version"} | None}
    opening: dict[str, Any] | None
    reason: str
    created_at: datetime

    def __post_init__(self) -> None:
        require_aware("created_at", self.created_at)
        if not self.client_order_id:
            raise ValueError("client_order_id must not be empty")
        _one_of("side", self.side, SIDES)
        _one_of("purpose", self.purpose, PURPOSES)
        _one_of("mode", self.mode, MODES)
        _one_of("order_type", self.order_type, ORDER_TYPES)
        _finite("quantity", self.quantity, positive=True)
        if self.price is not None:
            _finite("price", self.price, positive=True)
        elif self.order_type == "LIMIT":
            raise ValueError("a LIMIT order needs a price")
        if not set(self.request) <= REQUEST_KEYS:
            raise ValueError(f"request holds only {sorted(REQUEST_KEYS)}, got {sorted(self.request)}")
        _json("request", self.request)
        _json("opening", self.opening)


@dataclass(frozen=True, slots=True)
class OrderTransitionRecord:
    """A step of an order's life as the exchange (or the client, for UNKNOWN) reported it;
    `filled_quantity` and `fee` are cumulative."""

    client_order_id: str
    status: str  # one of STATUSES
    at: datetime
    venue_order_id: str | None = None
    filled_quantity: float = 0.0  # cumulative
    average_price: float | None = None
    fee: float = 0.0  # cumulative, quote currency
    detail: str = ""

    def __post_init__(self) -> None:
        require_aware("at", self.at)
        _one_of("status", self.status, STATUSES)
        _finite("filled_quantity", self.filled_quantity)
        if self.average_price is not None:
            _finite("average_price", self.average_price, positive=True)
        if not math.isfinite(self.fee):  # a maker rebate is a negative fee
            raise ValueError(f"fee must be finite, got {self.fee}")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An order as journalled: its intent and where it stands (what recovery reads back)."""

    intent: OrderIntentRecord
    status: str
    venue_order_id: str | None
    filled_quantity: float
    average_price: float | None
    fee: float
    updated_at: datetime


INTENT_FIELDS = tuple(f.name for f in fields(OrderIntentRecord))
TRANSITION_FIELDS = tuple(f.name for f in fields(OrderTransitionRecord))
STATE_FIELDS = ("status", "venue_order_id", "filled_quantity", "average_price", "fee", "updated_at")


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


class UnknownOrders(Exception):  # noqa: N818 -- a reason, turned into a LedgerError by the ledger
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids


def insert_intent(connection: Connection, intent: OrderIntentRecord) -> None:
    """The journal row, NEW, and its NEW transition; a client order id stored before breaks the
    table's unique constraint (IntegrityError)."""
    row = {name: getattr(intent, name) for name in INTENT_FIELDS}
    state = {"status": "NEW", "venue_order_id": None, "filled_quantity": 0.0, "average_price": None, "fee": 0.0}
    connection.execute(insert(OrderJournalRow).values(**row, **state, updated_at=intent.created_at))
    new = OrderTransitionRecord(intent.client_order_id, "NEW", intent.created_at, detail="intent")
    connection.execute(insert(OrderTransitionRow).values(**{name: getattr(new, name) for name in TRANSITION_FIELDS}))


def apply_transitions(connection: Connection, transitions: Sequence[OrderTransitionRecord]) -> None:
    """Record every transition and bring each order's journal row to where it stands, in order.

    An order in a terminal status stays there: exchanges send late duplicates and out-of-order
    updates (a websocket's FILLED after the REST answer's, a stale PARTIALLY_FILLED), and a final
    outcome must not be undone by one. Its transition is still recorded, so the history shows it.
    The fill and fee are cumulative, so an update reporting less than the journal holds (an
    older one arriving late, an UNKNOWN written by the client knowing nothing) keeps the larger;
    a venue order id, an average price or a fee of None / 0 (none reported) keeps the one known.
    """
    if not transitions:
        return
    ids = list(dict.fromkeys(t.client_order_id for t in transitions))
    query = select(OrderJournalRow).where(OrderJournalRow.client_order_id.in_(ids)).with_for_update()
    rows = connection.execute(query)
    states = {row.client_order_id: {name: getattr(row, name) for name in STATE_FIELDS} for row in rows}
    missing = [cid for cid in ids if cid not in states]
    if missing:
        raise UnknownOrders(missing)
    for transition in transitions:
        _advance(states[transition.client_order_id], transition)
    connection.execute(
        insert(OrderTransitionRow), [{name: getattr(t, name) for name in TRANSITION_FIELDS} for t in transitions]
    )
    for cid, state in states.items():
        connection.execute(update(OrderJournalRow).where(OrderJournalRow.client_order_id == cid).values(**state))


def _advance(state: dict[str, Any], transition: OrderTransitionRecord) -> None:
    if state["venue_order_id"] is None:
        state["venue_order_id"] = transition.venue_order_id
    if state["status"] in TERMINAL:
        return  # a late duplicate: the outcome stands (see apply_transitions)
    state["status"] = transition.status
    if transition.venue_order_id is not None:
        state["venue_order_id"] = transition.venue_order_id
    if transition.filled_quantity >= state["filled_quantity"]:
        state["filled_quantity"] = transition.filled_quantity
        if transition.average_price is not None:
            state["average_price"] = transition.average_price
        if transition.fee != 0.0:  # 0: none reported (a rebate is negative)
            state["fee"] = transition.fee
    state["updated_at"] = transition.at


def entry(row: Any) -> JournalEntry:
    intent = OrderIntentRecord(**{name: getattr(row, name) for name in INTENT_FIELDS})
    return JournalEntry(
        intent=intent,
        status=row.status,
        venue_order_id=row.venue_order_id,
        filled_quantity=row.filled_quantity,
        average_price=row.average_price,
        fee=row.fee,
        updated_at=row.updated_at,
    )


def unfinished(connection: Connection, mode: str | None) -> list[JournalEntry]:
    """Orders not in a terminal status, oldest first."""
    query = select(OrderJournalRow).where(OrderJournalRow.status.not_in(TERMINAL))
    if mode is not None:
        query = query.where(OrderJournalRow.mode == mode)
    query = query.order_by(OrderJournalRow.created_at, OrderJournalRow.id)
    return [entry(row) for row in connection.execute(query)]


def journal_entry(connection: Connection, client_order_id: str) -> JournalEntry | None:
    row = connection.execute(select(OrderJournalRow).where(OrderJournalRow.client_order_id == client_order_id)).first()
    return None if row is None else entry(row)


def journal_query(pair: str | None, status: str | None) -> Select[Any]:
    query = select(_table("order_journal"))
    if pair is not None:
        query = query.where(OrderJournalRow.pair == pair)
    if status is not None:
        query = query.where(OrderJournalRow.status == status)
    return query


def journal_item(connection: Connection, client_order_id: str) -> dict[str, Any] | None:
    """One journal row as JSON-ready values, with its transitions in order, or None."""
    query = journal_query(None, None).where(OrderJournalRow.client_order_id == client_order_id)
    row = connection.execute(query).first()
    if row is None:
        return None
    return {**row._mapping, "transitions": transitions(connection, client_order_id)}


def transitions(connection: Connection, client_order_id: str) -> list[dict[str, Any]]:
    query = (
        select(_table("order_transitions"))
        .where(OrderTransitionRow.client_order_id == client_order_id)
        .order_by(OrderTransitionRow.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


# --- reconciliations ----------------------------------------------------------------------------


def insert_reconciliation(connection: Connection, at: datetime, mismatches: list[dict[str, Any]]) -> int:
    require_aware("at", at)
    for mismatch in mismatches:
        if not isinstance(mismatch, dict) or "kind" not in mismatch:
            raise ValueError(f"a mismatch is an object with a 'kind', got {mismatch!r}")
    _json("mismatches", mismatches)
    values = {"at": at, "ok": not mismatches, "mismatches": list(mismatches), "note": ""}
    row_id: int = connection.execute(
        insert(ReconciliationRow).values(**values).returning(ReconciliationRow.id)
    ).scalar_one()
    return row_id


def acknowledge(connection: Connection, rec_id: int, by: str, at: datetime, note: str) -> bool:
    """Mark a run acknowledged; False when there is no such run or it already was."""
    require_aware("at", at)
    if not 0 < rec_id < 2**63:  # a BIGINT: a bigger one must not reach the database
        return False
    statement = (
        update(ReconciliationRow)
        .where(ReconciliationRow.id == rec_id, ReconciliationRow.acknowledged_at.is_(None))
        .values(acknowledged_at=at, acknowledged_by=by, note=note)
    )
    return bool(connection.execute(statement).rowcount)


def open_reconciliation(connection: Connection) -> dict[str, Any] | None:
    """The latest run, when it found mismatches nobody acknowledged yet; None otherwise."""
    row = connection.execute(reconciliations_query().order_by(ReconciliationRow.id.desc()).limit(1)).first()
    if row is None or row.ok or row.acknowledged_at is not None:
        return None
    return dict(row._mapping)


def reconciliations_query() -> Select[Any]:
    return select(_table("reconciliations"))
