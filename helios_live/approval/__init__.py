"""Tier 4, the approval step of the decision chain (docs/approval.md)."""

from __future__ import annotations

from helios_core.decision import Approved, Context, Verdict


class PassThroughApproval:
    """No Tier 4 at all: the step approves and leaves no audit record (a backtest's baseline)."""

    name = "approval"

    def __call__(self, context: Context) -> Verdict:
        return Approved(self.name, "pass-through: no approver configured")
