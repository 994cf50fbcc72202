"""The surveillance step of the decision chain (after Tier 4, before the portfolio guard, so the
guard checks the size it leaves): a CRITICAL event on the pair or a market its reference is built
from denies the entry, a HIGH one scales its size by `factor`; each verdict names the event.
The chain runs for entries only: exits never meet it.

With the monitors in another process (`helios surveil`), `Followed` keeps the active events as
the ledger has them, refreshed on a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from helios_core.decision import Approved, Context, Denied, Verdict
from helios_core.surveillance.events import SecurityEvent
from helios_core.surveillance.gate import Restriction, restriction
from helios_live.ledger import Ledger
from helios_live.surveillance.rows import event_of

MAX_ACTIVE = 500


class SurveillanceGate:
    name = "surveillance"

    def __init__(self, restrictions: Callable[[str], Restriction], factor: float) -> None:
        self.restrictions = restrictions
        self.factor = factor

    def __call__(self, context: Context) -> Verdict:
        found = self.restrictions(context.pair)
        if found.blocking is not None:
            return Denied(self.name, f"{_text(found.blocking)}: entries on {context.pair} blocked")
        if found.scaling is not None:
            sizing = context.sizing
            if sizing is None:
                return Denied(self.name, "no sizing to scale")
            context.sizing = replace(sizing, fraction=sizing.fraction * self.factor)
            return Approved(self.name, f"{_text(found.scaling)}: size x{self.factor:g}")
        return Approved(self.name, "no surveillance event on the pair")


def _text(event: SecurityEvent) -> str:
    return f"{event.severity} {event.type} on {event.venue}/{event.asset} (event {event.id})"


class Followed:
    """The active events as the ledger holds them (written by `helios surveil`)."""

    def __init__(self, fx: str) -> None:
        self.fx = fx
        self.events: list[SecurityEvent] = []
        self.error = ""

    def refresh(self, ledger: Ledger) -> list[SecurityEvent]:
        page = ledger.security_events(active=True, limit=MAX_ACTIVE)
        self.events = [event_of(item) for item in page.items]
        return self.events

    def restriction(self, pair: str) -> Restriction:
        return restriction(self.events, pair, self.fx)
