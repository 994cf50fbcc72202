"""What happens when the approver has no valid answer, and the circuit breaker that stops asking
a service that keeps failing.

Only entries reach the approval step, and an entry adds risk: on a failure it gets the
configured policy, `reject` (the default: no answer, no trade) or `neural_only` (the design's
LLM_TIMEOUT_FALLBACK: the trade goes on with Tiers 3 and 5 alone). Risk-reducing actions
(exits, stops, emergency closes) never pass through the step, so no failure can hold one up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Failures of the service, which open the circuit; a budget ceiling or a replay miss says
# nothing about the service's health.
SERVICE_FAILURES = frozenset({"timeout", "sdk_error", "validation", "max_tokens", "refusal", "merge"})

State = Literal["closed", "open", "half_open"]


def is_service_failure(kind: str | None) -> bool:
    return kind is not None and (kind in SERVICE_FAILURES or kind.startswith("http_"))


@dataclass
class CircuitBreaker:
    """Closed until `failures` service failures in a row; then open for `cooldown_s` (calls are
    refused without being sent); then half-open: one call is let through, and its outcome
    closes the circuit or opens it again. Time is the engine's clock, given by the caller."""

    failures: int
    cooldown_s: float
    state: State = "closed"
    in_a_row: int = 0
    opened_at: float | None = None
    opened: int = 0  # times it opened, for the metrics
    _trial: bool = False  # a half-open call is under way

    def allow(self, now: float) -> bool:
        if self.state == "open" and self.opened_at is not None and now - self.opened_at >= self.cooldown_s:
            self.state = "half_open"
        if self.state == "closed":
            return True
        if self.state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def record(self, kind: str | None, now: float) -> None:
        """The outcome of a call that `allow` let through: its failure kind, None on success."""
        trial, self._trial = self._trial, False
        if not is_service_failure(kind):
            if kind is None:
                self.in_a_row = 0
                self.state = "closed"
            elif trial:
                self.state = "half_open"  # not a verdict on the service: the next call tries again
            return
        self.in_a_row += 1
        if trial or self.in_a_row >= self.failures:
            self.state, self.opened_at = "open", now
            self.opened += 1

    def snapshot(self) -> dict[str, object]:
        return {"state": self.state, "failures_in_a_row": self.in_a_row, "opened": self.opened}
