"""The ledger rows of the detectors' readings and events (helios_live/ledger/surveillance.py)."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from helios_core.surveillance.cascade import CascadeReading, identity
from helios_core.surveillance.deviation import DeviationReading
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_core.surveillance.observations import Liquidation
from helios_core.surveillance.vault import VaultReading
from helios_live.ledger.surveillance import Row


def uid(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def _name(severity: object) -> str | None:
    return None if severity is None else str(severity)


def deviation_row(reading: DeviationReading, venue: str, kind: str) -> Row:
    return Row(
        "oracle_deviations",
        {
            "uid": uid("deviation", venue, reading.asset, kind, reading.ts),
            "ts": reading.ts,
            "venue": venue,
            "asset": reading.asset,
            "kind": kind,
            "price": reading.price,
            "reference": reading.reference,
            "deviation_pct": reading.deviation_pct,
            "severity": _name(reading.severity),
            "onset": reading.onset,
            "duration_s": reading.duration_s,
            "sustained": reading.sustained,
            "risk": reading.risk,
            "used": reading.used,
            "stale": reading.stale,
            "bad": reading.bad,
        },
    )


def cascade_row(reading: CascadeReading, venue: str) -> Row:
    return Row(
        "liquidation_patterns",
        {
            "uid": uid("cascade", venue, reading.asset, reading.ts),
            "ts": reading.ts,
            "venue": venue,
            "asset": reading.asset,
            "pattern": "liquidation_cascade" if reading.severity is not None else "liquidations",
            "count": reading.count,
            "longs": reading.longs,
            "shorts": reading.shorts,
            "notional": reading.notional,
            "direction": reading.direction,
            "severity": _name(reading.severity),
            "score": reading.score,
            "first": reading.first,
        },
    )


def liquidation_row(liq: Liquidation) -> Row:
    return Row(
        "liquidations",
        {
            "uid": uid("liquidation", *identity(liq)),
            "ts": liq.ts,
            "venue": liq.venue,
            "asset": liq.asset,
            "side": liq.side,
            "price": liq.price,
            "size": liq.size,
            "notional": liq.notional,
            "user": liq.user,
            "tx_hash": liq.tx_hash,
        },
    )


def vault_row(reading: VaultReading, venue: str) -> Row:
    return Row(
        "vault_snapshots",
        {
            "uid": uid("vault", venue, reading.vault, reading.ts),
            "ts": reading.ts,
            "venue": venue,
            "vault": reading.vault,
            "equity": reading.equity,
            "pnl": reading.pnl,
            "equity_change_pct": reading.equity_change_pct,
            "pnl_change": reading.pnl_change,
            "z_equity": reading.z_equity,
            "z_pnl": reading.z_pnl,
            "score": reading.score,
            "severity": _name(reading.severity),
        },
    )


def event_row(event: SecurityEvent) -> Row:
    return Row(
        "security_events",
        {
            "event_id": event.id,
            "type": event.type,
            "venue": event.venue,
            "asset": event.asset,
            "severity": str(event.severity),
            "peak": str(event.peak),
            "score": event.score,
            "indicators": dict(event.indicators),
            "first_seen": event.first_seen,
            "last_seen": event.last_seen,
            "count": event.count,
            "tx_hash": event.tx_hash,
            "ended": event.ended,
        },
    )


def event_of(item: dict[str, Any]) -> SecurityEvent:
    """A security event from its ledger row."""

    def ts(value: datetime | None) -> float | None:
        return None if value is None else value.timestamp()

    score = item["score"]
    return SecurityEvent(
        item["event_id"],
        item["type"],
        item["venue"],
        item["asset"],
        Severity[item["severity"]],
        Severity[item["peak"]],
        float(score) if score is not None and math.isfinite(score) else 0.0,
        item["indicators"] or {},
        ts(item["first_seen"]) or 0.0,
        ts(item["last_seen"]) or 0.0,
        int(item["count"]),
        item["tx_hash"],
        ts(item["ended"]),
    )
