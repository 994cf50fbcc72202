"""The operator's per-tier switches (the design's section 50.2.4, `PUT /api/orchestrator/system/tiers/{id}`).

A tier is switched off only where that is safe: off, a tier may stop entries or hand them to a
stated policy, never weaken an exit or a limit. The engine switches (the gate: auto-trading and
the emergency stop), the portfolio limits (the guard) and the surveillance gate are never skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from helios_core.decision import Approved, Context, Denied, Step, Verdict
from helios_core.errors import HeliosError


@dataclass(frozen=True)
class Tier:
    name: str
    off: str  # what switching it off does, or why it cannot be


TIERS = {
    "tier1": Tier("Data foundation", "cannot be switched off: its candles drive the stops and exits of open positions"),
    "tier2": Tier("Neural network", "no new entries: predictions are still made and recorded, none opens a position"),
    "tier3": Tier("Risk sizing", "cannot be switched off: it sizes every entry (switch auto-trading off instead)"),
    "tier4": Tier("LLM approval", "every entry gets Tier 4's failure policy (HELIOS_LLM_FAILURE_POLICY)"),
    "tier5": Tier(
        "Portfolio manager",
        "the allocation (target weights, trims) is skipped; the portfolio limits and the surveillance gate "
        "still apply, as they lower risk only",
    ),
}
SWITCHABLE = frozenset({"tier2", "tier4", "tier5"})


class TierError(HeliosError):
    """A tier that does not exist or that cannot be switched off."""


class TierSwitches:
    def __init__(self) -> None:
        self.off: set[str] = set()

    def on(self, tier: str) -> bool:
        return tier not in self.off

    def check(self, tier: str, enabled: bool) -> None:
        if tier not in TIERS:
            raise TierError(f"unknown tier {tier!r}; the tiers are {', '.join(TIERS)}")
        if not enabled and tier not in SWITCHABLE:
            raise TierError(f"{tier} ({TIERS[tier].name}) {TIERS[tier].off}")

    def set(self, tier: str, enabled: bool) -> None:
        self.check(tier, enabled)
        if enabled:
            self.off.discard(tier)
        else:
            self.off.add(tier)

    def state(self) -> list[dict[str, Any]]:
        return [
            {
                "id": tier,
                "name": t.name,
                "enabled": self.on(tier),
                "switchable": tier in SWITCHABLE,
                "when_off": t.off,
            }
            for tier, t in TIERS.items()
        ]


class Switched:
    """The step while its tier is on. Off: a denial (tier 2's signal, so no entry follows), or
    with `skip` a pass (tier 5's allocation, whose targets only ever trim an entry)."""

    def __init__(self, step: Step, tier: str, switches: TierSwitches, *, skip: bool = False) -> None:
        self.step, self.name, self.tier, self.switches, self.skip = step, step.name, tier, switches, skip

    def __call__(self, context: Context) -> Verdict | Awaitable[Verdict]:
        if self.switches.on(self.tier):
            return self.step(context)
        why = f"{self.tier} ({TIERS[self.tier].name}) is switched off by the operator"
        return Approved(self.name, f"skipped: {why}") if self.skip else Denied(self.name, why)
