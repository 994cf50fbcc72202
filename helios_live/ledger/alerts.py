"""Alert deliveries: one row per alert (or recovery) per channel, with its tries and outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select

from helios_core.trading.orders import require_aware
from helios_live.ledger.models import AlertDeliveryRow

OUTCOMES = ("DELIVERED", "FAILED")
STATES = ("FIRING", "RESOLVED")


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """What became of one alert on one channel: `attempts` tries, the last one's error if it failed."""

    alert_id: str
    rule: str
    subject: str
    severity: str
    state: str
    channel: str
    attempts: int
    outcome: str
    error: str | None
    message: str
    raised_at: datetime
    finished_at: datetime

    def __post_init__(self) -> None:
        require_aware("raised_at", self.raised_at)
        require_aware("finished_at", self.finished_at)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {self.state!r}")


def write(connection: Connection, deliveries: Sequence[AlertDelivery]) -> int:
    if deliveries:
        connection.execute(insert(AlertDeliveryRow), [asdict(d) for d in deliveries])
    return len(deliveries)


def deliveries_query(rule: str | None, channel: str | None) -> Select[Any]:
    query = select(AlertDeliveryRow.__table__)
    if rule is not None:
        query = query.where(AlertDeliveryRow.rule == rule)
    if channel is not None:
        query = query.where(AlertDeliveryRow.channel == channel)
    return query
