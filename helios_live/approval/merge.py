"""The merge of an approver's answer into Tier 3's proposal: code, not trust. One dimension at a
time, the answer may keep or lower risk, never raise it: the size and the leverage stay or
shrink, the stop stays or tightens, the take-profit is not widened. Whatever the answer asked
beyond the proposal is clamped back, and each clamp is named.

Only entries reach the approval step: exits, stops and emergency closes never pass through the
chain, so no answer can block or delay one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from helios_core.risk.sizing import Sizing
from helios_live.approval.answer import Answer


@dataclass(frozen=True, slots=True)
class Merged:
    sizing: Sizing  # the trade that goes on to Tier 5 (unchanged on REJECT: nothing is traded)
    verdict: str  # APPROVE, MODIFY or REJECT, as it stands after the merge
    clamps: tuple[str, ...]


def merge(proposal: Sizing, answer: Answer) -> Merged:
    if answer.decision == "REJECT":
        return Merged(proposal, "REJECT", ())
    # APPROVE's numbers are merged as MODIFY's are: an approval that also asks for less gets less.
    clamps: list[str] = []

    def lower(name: str, asked: float, limit: float) -> float:
        if asked > limit:
            clamps.append(f"{name} {asked:.6g} above the proposal's {limit:.6g}: kept at {limit:.6g}")
            return limit
        return asked

    fraction = proposal.fraction * answer.size_multiplier
    merged = replace(
        proposal,
        fraction=fraction,
        leverage=lower("leverage", answer.leverage, proposal.leverage),
        stop_loss_pct=lower("stop_loss_pct", answer.stop_loss_pct, proposal.stop_loss_pct),
        take_profit_pct=lower("take_profit_pct", answer.take_profit_pct, proposal.take_profit_pct),
    )
    if not fraction > 0:
        return Merged(proposal, "REJECT", (*clamps, "size_multiplier 0: nothing left to trade"))
    return Merged(merged, "APPROVE" if merged == proposal else "MODIFY", tuple(clamps))


def riskier(final: Sizing, proposal: Sizing) -> list[str]:
    """The dimensions in which `final` takes more risk than `proposal` (empty: none)."""
    out = []
    if final.fraction > proposal.fraction:
        out.append("fraction")
    if final.leverage > proposal.leverage:
        out.append("leverage")
    if final.stop_loss_pct > proposal.stop_loss_pct:
        out.append("stop_loss_pct")
    if final.take_profit_pct > proposal.take_profit_pct:
        out.append("take_profit_pct")
    if final.max_hold_s > proposal.max_hold_s:
        out.append("max_hold_s")
    return out
