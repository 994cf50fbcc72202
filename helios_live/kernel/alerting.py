"""What the alert rules read of the engine on their timer (docs/alerts.md): the stream's health
check, the ledger's writes, Tier 5's drawdown and daily loss, Tier 4's circuit and spend."""

from __future__ import annotations

from typing import Any, Protocol

from helios_live.alerts.rules import Readings
from helios_live.approval.step import Approval
from helios_live.data.client import DataClient
from helios_live.ledger.writer import LedgerWriter
from helios_live.trading.desk import Desk


class Alerted(Protocol):
    approval: Any
    client: DataClient
    desk: Desk
    ledger_writer: LedgerWriter
    status: str

    def health_checks(self) -> dict[str, str]: ...

    def market_now(self) -> float: ...


def readings(kernel: Alerted) -> Readings:
    account, limits = kernel.desk.account, kernel.desk.config.limits
    health = kernel.ledger_writer.health
    circuit, spent, cap = None, None, 0.0
    if isinstance(kernel.approval, Approval):
        circuit = kernel.approval.breaker.state
        budget = getattr(kernel.approval.approver, "budget", None)
        if budget is not None:
            spent, cap = budget.spent_today(kernel.market_now()), budget.day_max_usd
    running = kernel.status == "RUNNING"
    checks = kernel.health_checks()
    return Readings(
        running=running,
        stream_problem=checks["stream_alive"] if running else "",
        stream_silent_s=kernel.client.silent_s(),
        # failing writes, or writes that wait past the limit: a database that hangs fails nothing
        ledger_error=(health.error or "ledger writes fail") if health.failing else checks["ledger_backlog"],
        drawdown=account.drawdown,
        max_drawdown=limits.max_drawdown,
        daily_return=account.view({}).daily_return,
        daily_loss=limits.daily_loss,
        circuit=circuit,
        spent_usd=spent,
        day_max_usd=cap,
    )
