"""The rules: what the operator is alerted of, each a condition about a subject.

Two sources feed them. The engine's events (every `Kernel.record` passes through
`from_event`): the emergency stop, a refused or rolled-back model, a CRITICAL security event, a
reconciliation mismatch, each with the event that ends it. And readings of the engine's state
on a timer (`Conditions.evaluate`): the stream down for longer than `stream_down_s`, the ledger
failing writes, Tier 5's drawdown and daily-loss limits, Tier 4's circuit and spend cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helios_live.alerts.alert import AlertSeverity

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING
RULES: dict[str, AlertSeverity] = {
    "emergency_stop": CRITICAL,
    "drawdown_limit": CRITICAL,
    "daily_loss_limit": CRITICAL,
    "stream_down": CRITICAL,
    "ledger_unreachable": CRITICAL,
    "model_refused": WARNING,
    "model_rolled_back": WARNING,
    "surveillance_critical": CRITICAL,
    "reconciliation_mismatch": CRITICAL,
    "llm_circuit_open": WARNING,
    "llm_spend_cap": WARNING,
}
SUBJECT_MAX = 66  # the ledger's column


@dataclass(frozen=True, slots=True)
class Change:
    """A rule's condition about `subject` as now seen; `once` for a one-off event with no end."""

    rule: str
    subject: str
    firing: bool
    message: str = ""
    once: bool = False

    @property
    def severity(self) -> AlertSeverity:
        return RULES[self.rule]

    @property
    def key(self) -> tuple[str, str]:
        return self.rule, self.subject[:SUBJECT_MAX]


def from_event(kind: str, pair: str | None, detail: Mapping[str, Any]) -> list[Change]:
    """The conditions an engine event begins or ends."""
    if kind == "EMERGENCY_STOP":
        closed = detail.get("closed_positions") or []
        return [
            Change(
                "emergency_stop",
                "engine",
                True,
                f"emergency stop: {detail.get('reason') or 'no reason given'}; "
                f"{len(closed)} position(s) closed, entries blocked until it is cleared",
            )
        ]
    if kind == "EMERGENCY_STOP_CLEARED":
        return [Change("emergency_stop", "engine", False, f"emergency stop cleared: {detail.get('reason') or '-'}")]
    if kind == "MODEL_REFUSED":
        message = f"model {detail.get('version')} refused, the previous one keeps serving: {detail.get('reason')}"
        return [Change("model_refused", "model", True, message)]
    if kind == "MODEL_LOADED":
        return [Change("model_refused", "model", False, f"model {detail.get('version')} loaded")]
    if kind == "MODEL_ROLLED_BACK":
        message = f"model rolled back from {detail.get('previous')} to {detail.get('version')}: {detail.get('reason')}"
        return [Change("model_rolled_back", str(detail.get("version")), True, message, once=True)]
    if kind in ("SECURITY_EVENT", "SECURITY_EVENT_ENDED"):
        critical = kind == "SECURITY_EVENT" and detail.get("severity") == "CRITICAL"
        what = f"{detail.get('type')} on {detail.get('venue')}/{detail.get('asset')} (score {detail.get('score')})"
        pairs = ", ".join(detail.get("pairs") or []) or "none of ours"
        message = (
            f"CRITICAL security event {what}, pairs {pairs}"
            if critical
            else f"security event {what} no longer critical"
        )
        return [Change("surveillance_critical", str(detail.get("event_id")), critical, message)]
    if kind == "RECONCILIATION_MISMATCH":
        found = detail.get("mismatches") or []
        first = found[0].get("detail", "") if found and isinstance(found[0], Mapping) else ""
        count = f"{len(found)} mismatch(es) with VALR"
        message = f"reconciliation {detail.get('reconciliation')}: {count}, entries blocked; {first}"
        return [Change("reconciliation_mismatch", "valr", True, message)]
    if kind in ("RECONCILIATION_RESOLVED", "RECONCILIATION_ACKNOWLEDGED"):
        how = "acknowledged" if kind == "RECONCILIATION_ACKNOWLEDGED" else "resolved"
        return [
            Change("reconciliation_mismatch", "valr", False, f"reconciliation {detail.get('reconciliation')} {how}")
        ]
    return []


@dataclass(frozen=True, slots=True)
class Readings:
    """The engine's state as the timer reads it (kernel/alerting.py builds it)."""

    running: bool
    stream_problem: str  # why the stream is not alive ("" while it is)
    stream_silent_s: float | None  # since its last message
    ledger_error: str  # the latest write's failure ("" while writes succeed)
    drawdown: float
    max_drawdown: float
    daily_return: float
    daily_loss: float
    circuit: str | None = None  # Tier 4's circuit breaker state; None: no approver behind one
    spent_usd: float | None = None  # Tier 4's spend today; None: no budget
    day_max_usd: float = 0.0


class Conditions:
    """The timer's rules; the stream's outage is timed from the first reading that saw it."""

    def __init__(self, stream_down_s: float) -> None:
        self.stream_down_s = stream_down_s
        self._down_since: float | None = None

    def evaluate(self, readings: Readings, now: float) -> list[Change]:
        if not readings.running:
            self._down_since = None  # a stopped engine's stream is not an outage; a restart times afresh
        out = [self._stream(readings, now)] if readings.running else []
        out.append(
            Change(
                "ledger_unreachable",
                "ledger",
                bool(readings.ledger_error),
                f"ledger writes failing: {readings.ledger_error}"
                if readings.ledger_error
                else "ledger writes succeed again",
            )
        )
        drawdown, limit = readings.drawdown, readings.max_drawdown
        out.append(
            Change(
                "drawdown_limit",
                "portfolio",
                drawdown >= limit,
                f"drawdown {drawdown:.2%} against the {limit:.2%} limit",
            )
        )
        day, loss = readings.daily_return, readings.daily_loss
        out.append(
            Change(
                "daily_loss_limit",
                "portfolio",
                day <= -loss,
                f"today {day:+.2%} against the daily-loss limit of -{loss:.2%}",
            )
        )
        if readings.circuit is not None:
            open_ = readings.circuit != "closed"
            out.append(
                Change(
                    "llm_circuit_open",
                    "approval",
                    open_,
                    f"Tier 4's circuit is {readings.circuit}: the LLM is not asked, the failure policy decides"
                    if open_
                    else "Tier 4's circuit closed: the LLM answers again",
                )
            )
        if readings.spent_usd is not None and readings.day_max_usd > 0:
            spent, cap = readings.spent_usd, readings.day_max_usd
            out.append(
                Change(
                    "llm_spend_cap", "approval", spent >= cap, f"Tier 4 spent ${spent:.2f} today of its ${cap:.2f} cap"
                )
            )
        return out

    def _stream(self, readings: Readings, now: float) -> Change:
        if not readings.stream_problem:
            self._down_since = None
            return Change("stream_down", "stream", False, "market-data stream alive again")
        if self._down_since is None:
            self._down_since = now
        down = max(now - self._down_since, readings.stream_silent_s or 0.0)
        message = f"market-data stream down for {down:.0f} s: {readings.stream_problem}"
        return Change("stream_down", "stream", down > self.stream_down_s, message)
