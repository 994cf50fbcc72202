"""Security events: one typed record per condition a detector found, de-duplicated.

An event is keyed by its transaction hash when it has one, else by (type, asset, the time bucket
its condition began in), so the same condition seen on every poll is one event whose `count`
and `last_seen` grow, and a new condition later is a new event. The source document's
de-duplication kept only events with a transaction hash and dropped every other one
(docs/surveillance.md). An event stays active while its detector still reports the condition and
ends (`ended`) at the first check that no longer does: the gate clears with it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

BUCKET_S = 60.0


class Severity(IntEnum):
    """Ordered: a comparison says which is worse. MEDIUM is the documents' warning level."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detector reports for one asset at one check: a condition, not yet an event."""

    type: str  # oracle_deviation, price_deviation, liquidation_cascade, vault_anomaly, market_anomaly
    venue: str
    asset: str
    severity: Severity
    score: float  # 0-100
    indicators: Mapping[str, Any] = field(default_factory=dict)
    began: float | None = None  # when the condition began, where the detector knows (a deviation's onset)
    tx_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    id: str
    type: str
    venue: str
    asset: str
    severity: Severity
    peak: Severity
    score: float
    indicators: Mapping[str, Any]
    first_seen: float
    last_seen: float
    count: int
    tx_hash: str | None = None
    ended: float | None = None

    @property
    def active(self) -> bool:
        return self.ended is None

    @property
    def key(self) -> str:
        return self.id


def event_id(finding: Finding, now: float, bucket_s: float = BUCKET_S) -> str:
    """The de-duplication key, as a stable id: the transaction hash, else type, asset and the
    bucket of the condition's start."""
    if finding.tx_hash:
        raw = f"tx|{finding.tx_hash.lower()}"
    else:
        began = finding.began if finding.began is not None else now
        bucket = math.floor(began / bucket_s) if bucket_s > 0 else began
        raw = f"{finding.type}|{finding.venue}|{finding.asset}|{bucket}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


class EventBook:
    """The events that are active, one per (type, venue, asset) condition, plus those with a
    transaction hash; `observe` folds one check's findings in and returns what changed."""

    def __init__(self, bucket_s: float = BUCKET_S) -> None:
        self.bucket_s = bucket_s
        self.active: dict[tuple[str, str, str], SecurityEvent] = {}
        self.seen_tx: dict[str, SecurityEvent] = {}
        self.ended: dict[str, float] = {}  # ids of events that ended, and when: a new condition never reuses one

    def observe(self, type: str, venue: str, asset: str, finding: Finding | None, now: float) -> SecurityEvent | None:
        """The check for `type` on (venue, asset) at `now` found `finding` (None: the condition is
        absent). Returns the event it created, updated or ended; None when nothing changed."""
        slot = (type, venue, asset)
        current = self.active.get(slot)
        if finding is None:
            if current is None:
                return None
            del self.active[slot]
            self.ended[current.id] = now
            return replace(current, ended=now, last_seen=now)
        if finding.tx_hash:
            return self._tx(finding, now)
        if current is None:
            began = finding.began if finding.began is not None else now
            event = SecurityEvent(
                self._fresh(event_id(finding, now, self.bucket_s)),
                finding.type,
                venue,
                asset,
                finding.severity,
                finding.severity,
                finding.score,
                dict(finding.indicators),
                min(began, now),
                now,
                1,
            )
        else:
            event = replace(
                current,
                severity=finding.severity,
                peak=max(current.peak, finding.severity),
                score=finding.score,
                indicators=dict(finding.indicators),
                last_seen=now,
                count=current.count + 1,
            )
        self.active[slot] = event
        return event

    def _fresh(self, base: str) -> str:
        """`base`, or when an event that ended already had it (a new condition that began in the
        minute the last one ended), `base` with the next free suffix."""
        candidate, n = base, 1
        while candidate in self.ended:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _tx(self, finding: Finding, now: float) -> SecurityEvent | None:
        tx = (finding.tx_hash or "").lower()
        if tx in self.seen_tx:
            return None  # the same transaction seen again (overlapping polls): already an event
        event = SecurityEvent(
            event_id(finding, now, self.bucket_s),
            finding.type,
            finding.venue,
            finding.asset,
            finding.severity,
            finding.severity,
            finding.score,
            dict(finding.indicators),
            finding.began if finding.began is not None else now,
            now,
            1,
            tx_hash=tx,
            ended=now,  # one transaction: a moment, not a condition that stays
        )
        self.seen_tx[tx] = event
        return event

    def restore(self, events: list[SecurityEvent]) -> None:
        """Active events from the ledger at start: a condition that outlived a restart stays one event."""
        for event in events:
            if event.active and not event.tx_hash:
                self.active[(event.type, event.venue, event.asset)] = event

    def forget_before(self, ts: float) -> None:
        """Drop transaction hashes older than `ts` (their polls cannot return them again)."""
        self.seen_tx = {tx: e for tx, e in self.seen_tx.items() if e.last_seen >= ts}
        self.ended = {i: at for i, at in self.ended.items() if at >= ts}
