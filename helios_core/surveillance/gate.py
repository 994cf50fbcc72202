"""What surveillance does to entries: a CRITICAL event on a traded pair, or on a market its
reference is built from, blocks new entries on the pair; a HIGH one scales their size down.
Exits are never touched (the chain runs for entries only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from helios_core.pairs import split_pair
from helios_core.surveillance.events import SecurityEvent, Severity


def depends_on(pair: str, fx: str) -> frozenset[str]:
    """The assets whose events touch `pair`: itself, its base in USD, and for a pair quoted in
    the currency of `fx` (USDTZAR: ZAR) that rate."""
    base, quote = split_pair(pair)
    assets = {pair, base} if base else {pair}
    if quote and fx.endswith(quote) and fx != pair:
        assets.add(fx)
    return frozenset(assets)


@dataclass(frozen=True, slots=True)
class Restriction:
    blocking: SecurityEvent | None = None
    scaling: SecurityEvent | None = None


def restriction(events: Iterable[SecurityEvent], pair: str, fx: str) -> Restriction:
    """The worst active events on the assets `pair` depends on (the newest of equals)."""
    assets = depends_on(pair, fx)
    blocking = scaling = None
    for event in events:
        if not event.active or event.asset not in assets:
            continue
        if event.severity >= Severity.CRITICAL:
            if blocking is None or event.last_seen > blocking.last_seen:
                blocking = event
        elif event.severity >= Severity.HIGH and (scaling is None or event.last_seen > scaling.last_seen):
            scaling = event
    return Restriction(blocking, scaling)
