"""An alert: one condition (a rule about a subject) that began or ended, as the channels send it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal

from helios_core.trading.orders import require_aware

State = Literal["FIRING", "RESOLVED"]


class AlertSeverity(IntEnum):
    """Ordered, so a channel's floor is a comparison (design section 40: critical, warning, info)."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Alert:
    """`alert_id` names the episode: its FIRING message and the RESOLVED one that ends it share it."""

    alert_id: str
    rule: str
    subject: str
    severity: AlertSeverity
    state: State
    message: str
    raised_at: datetime
    reminder: bool = False

    def __post_init__(self) -> None:
        require_aware("raised_at", self.raised_at)

    @property
    def title(self) -> str:
        """One line: `[CRITICAL] stream_down valr: firing` (`resolved` for a recovery)."""
        what = "resolved" if self.state == "RESOLVED" else "still firing" if self.reminder else "firing"
        return f"[{self.severity}] {self.rule} {self.subject}: {what}"

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.message}\n(alert {self.alert_id}, {self.raised_at.isoformat()})"

    def payload(self) -> dict[str, object]:
        """The alert as JSON for the generic webhook."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "subject": self.subject,
            "severity": str(self.severity),
            "state": self.state,
            "reminder": self.reminder,
            "message": self.message,
            "raised_at": self.raised_at.isoformat(),
        }
