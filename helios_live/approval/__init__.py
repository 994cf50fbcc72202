"""Tier 4, the approval step of the decision chain. Until the LLM approver exists the default
approves everything, and says so in its verdict."""

from __future__ import annotations

from helios_core.decision import Approved, Context, Verdict


class PassThroughApproval:
    name = "approval"

    def __call__(self, context: Context) -> Verdict:
        return Approved(self.name, "pass-through: no approver configured")
