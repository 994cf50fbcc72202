"""The API's audit rows (helios_live/api/audit.py decides what is recorded and how often)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select

from helios_core.trading.orders import require_aware
from helios_live.ledger.models import ApiAuditRow

KINDS = ("REFUSED", "SUPPRESSED", "ACTION")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    kind: str  # one of KINDS
    client: str
    method: str
    path: str
    status: int
    detail: str | None = None
    principal: str | None = None
    role: str | None = None
    via: str | None = None
    count: int = 1
    body: str | None = None

    def __post_init__(self) -> None:
        require_aware("at", self.at)


def write(connection: Connection, records: Sequence[AuditRecord]) -> None:
    if records:
        connection.execute(insert(ApiAuditRow), [asdict(record) for record in records])


def query(kind: str | None, principal: str | None) -> Select[Any]:
    statement = select(ApiAuditRow.__table__)
    if kind is not None:
        statement = statement.where(ApiAuditRow.kind == kind)
    if principal is not None:
        statement = statement.where(ApiAuditRow.principal == principal)
    return statement
