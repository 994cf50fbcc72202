"""The surveillance tier's rows: writes that land once however often they are replayed, and the
history queries behind /api/security.

Every row carries a `uid` (an event its de-duplication id): a write inserts what is new and,
for an event, overwrites it whole with its newest state, so replaying a spool entry that had
already landed changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from helios_core.timeframes import as_datetime
from helios_live.ledger.models import (
    LiquidationPatternRow,
    LiquidationRow,
    OracleDeviationRow,
    SecurityEventRow,
    VaultSnapshotRow,
)

TABLES: dict[str, Any] = {
    "oracle_deviations": OracleDeviationRow,
    "liquidation_patterns": LiquidationPatternRow,
    "liquidations": LiquidationRow,
    "vault_snapshots": VaultSnapshotRow,
    "security_events": SecurityEventRow,
}
TIMES = ("ts", "onset", "first", "first_seen", "last_seen", "ended")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Row:
    """One surveillance row for `table`, times as epoch seconds (None where absent)."""

    table: str
    values: Mapping[str, Any]


def clean(value: Any) -> Any:
    """JSON and SQL without NaN or infinities (PostgreSQL's JSON refuses them): None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _values(row: Row) -> dict[str, Any]:
    out = {k: clean(v) for k, v in row.values.items()}
    for name in TIMES:
        if out.get(name) is not None:
            out[name] = as_datetime(float(out[name]))
    return out


def write(connection: Connection, rows: Sequence[Row]) -> int:
    """Store rows in order; how many were new or changed an event."""
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    written = 0
    for row in rows:
        model = TABLES[row.table]
        values = _values(row)
        statement = insert(model).values(**values)
        if row.table == "security_events":
            changes = {k: v for k, v in values.items() if k != "event_id"}
            statement = statement.on_conflict_do_update(index_elements=["event_id"], set_=changes)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["uid"])
        written += connection.execute(statement).rowcount or 0
    return written


def events_query(
    severity: str | None, type: str | None, asset: str | None, since: datetime | None, active: bool | None = None
) -> Select[Any]:
    """Security events, filtered before any limit (the source document limited first and then
    filtered by severity, so a page could come back empty while matching events existed)."""
    query = select(SecurityEventRow)
    if severity is not None:
        query = query.where(SecurityEventRow.severity == severity)
    if type is not None:
        query = query.where(SecurityEventRow.type == type)
    if asset is not None:
        query = query.where(SecurityEventRow.asset == asset)
    if since is not None:
        query = query.where(SecurityEventRow.last_seen >= since)
    if active is True:
        query = query.where(SecurityEventRow.ended.is_(None))
    return query


def deviations_query(asset: str | None, since: datetime | None) -> Select[Any]:
    query = select(OracleDeviationRow)
    if asset is not None:
        query = query.where(OracleDeviationRow.asset == asset)
    if since is not None:
        query = query.where(OracleDeviationRow.ts >= since)
    return query


def patterns_query(pattern: str | None) -> Select[Any]:
    query = select(LiquidationPatternRow)
    if pattern is not None:
        query = query.where(LiquidationPatternRow.pattern == pattern)
    return query


def between(model: Any, start: datetime, end: datetime) -> Select[Any]:
    """Rows of `model` with start <= ts < end, in the order they were written."""
    return select(model).where(model.ts >= start, model.ts < end).order_by(model.id)


def vault_query(vault: str | None) -> Select[Any]:
    query = select(VaultSnapshotRow)
    if vault is not None:
        query = query.where(VaultSnapshotRow.vault == vault)
    return query


def latest_deviations(connection: Connection) -> list[dict[str, Any]]:
    """The newest deviation check of each (venue, asset)."""
    newest = (
        select(func.max(OracleDeviationRow.id).label("id"))
        .group_by(OracleDeviationRow.venue, OracleDeviationRow.asset)
        .subquery()
    )
    rows = connection.execute(select(OracleDeviationRow).join(newest, OracleDeviationRow.id == newest.c.id))
    return [dict(r._mapping) for r in rows]


def latest_vaults(connection: Connection) -> list[dict[str, Any]]:
    newest = select(func.max(VaultSnapshotRow.id).label("id")).group_by(VaultSnapshotRow.vault).subquery()
    rows = connection.execute(select(VaultSnapshotRow).join(newest, VaultSnapshotRow.id == newest.c.id))
    return [dict(r._mapping) for r in rows]


def active_events(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.execute(events_query(None, None, None, None, active=True).order_by(SecurityEventRow.id))
    return [dict(r._mapping) for r in rows]


def prune(connection: Connection, before: datetime) -> dict[str, int]:
    """Delete rows older than `before` (an event once it ended before it); counts per table."""
    removed: dict[str, int] = {}
    for name, model in TABLES.items():
        if name == "security_events":
            condition = model.ended.is_not(None) & (model.ended < before)
        else:
            condition = model.ts < before
        removed[name] = connection.execute(delete(model).where(condition)).rowcount or 0
    return removed
