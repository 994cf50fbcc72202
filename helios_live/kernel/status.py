"""What the engine reports: status, metrics and health, as plain JSON-ready dicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import numpy as np

from helios_live.approval.step import Approval
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.pair import PairState


def status(kernel: Kernel) -> dict[str, Any]:
    now, started = kernel.ops_clock.timestamp(), kernel.started_at  # the machine's time in the service
    return {
        "status": kernel.status,
        "mode": kernel.mode,
        "auto_trading_enabled": kernel.auto_trading,
        "emergency_stop_active": kernel.emergency_stop,
        "tiers_off": sorted(kernel.tiers.off),
        "pairs": list(kernel.pairs),
        "model_version": kernel.model_version,
        "uptime_s": round(max(0.0, now - started), 3) if started is not None and kernel.status == "RUNNING" else 0.0,
        "approval": approval_state(kernel),
        "allocation": kernel.allocation.status(),
        "venue": kernel.venue.snapshot(),
    }


def approval_state(kernel: Kernel) -> dict[str, Any] | None:
    """Tier 4: the approver, its circuit, its verdicts and failures, and today's spend (None: the
    step was replaced whole, as a backtest's baseline does)."""
    step = kernel.approval
    return step.snapshot(kernel.market_now()) if isinstance(step, Approval) else None


def pair_status(kernel: Kernel, pair: str) -> dict[str, Any]:
    state = kernel.states.get(pair)
    if state is None:
        return {"pair": pair, "running": False}
    return {
        "pair": pair,
        "running": True,
        "catching_up": state.catchup is not None,
        "candles": state.candles,
        "backfilled_candles": state.backfilled,
        "late_trades": state.builder.late,
        "price_guard": guard_counts(state),
        "predictions": state.predictions,
        "pending_outcomes": len(state.pending),
        "last_candle_close": state.last_close,
        "last_candle_age_s": last_candle_age(kernel, state),
        "queue_depth": kernel.queues[pair].qsize() if pair in kernel.queues else 0,
        "recent_candles": [bar._asdict() for bar in list(state.recent)[-5:]],
    }


def metrics(kernel: Kernel) -> dict[str, Any]:
    stats = kernel.client.stats
    measured = kernel.measured
    return {
        **status(kernel),
        "stream": {
            "connected": stats.connected,
            "connects": stats.connects,
            "disconnects": stats.disconnects,
            "messages": stats.messages,
        },
        "messages": {"accepted": dict(kernel.client.accepted), "rejected": dict(kernel.client.rejected)},
        "candles": sum(s.candles for s in kernel.states.values()),
        "late_trades": sum(s.builder.late for s in kernel.states.values()),
        "backfilled_candles": sum(s.backfilled for s in kernel.states.values()),
        "price_guard": {pair: guard_counts(state) for pair, state in kernel.states.items()},
        "predictions": sum(s.predictions for s in kernel.states.values()),
        "verdicts": dict(kernel.verdicts),
        "errors": dict(kernel.errors + kernel.desk.errors),
        "decision_latency_ms": latency_ms(kernel.latencies, measured["live"]),
        "catchup_latency_ms": latency_ms(kernel.catchup_latencies, measured["catchup"]),
        "event_subscribers_dropped": kernel.broadcaster.dropped,
    }


async def health(kernel: Kernel) -> dict[str, Any]:
    """Every check (True when it passes), the reason of each that fails, the ledger's write
    state, the stream's silence and lag, and each pair's last candle age."""
    silent = kernel.client.silent_s()
    reasons = kernel.health_checks()
    reasons["ledger_reachable"] = "" if await asyncio.to_thread(kernel.ledger.ping) else "the ledger does not answer"
    writes = kernel.ledger_writer.health
    queued, _ = kernel.ledger_writer.backlog()
    return {
        "healthy": not any(reasons.values()),
        "checks": {name: not reason for name, reason in reasons.items()},
        "reasons": {name: reason for name, reason in reasons.items() if reason},
        "ledger": {
            "failing_writes": writes.failing,
            "failed_writes": writes.failed,
            "queued_writes": queued,
            "spool": spool_state(kernel),
        },
        "stream_silent_s": None if silent is None else round(silent, 3),
        "stream_lag_s": None if kernel.stream_lag is None else round(kernel.stream_lag, 3),
        "last_candle_age_s": {p: last_candle_age(kernel, s) for p, s in kernel.states.items()},
        "model_version": kernel.model_version,
    }


def spool_state(kernel: Kernel) -> dict[str, Any] | None:
    """What waits in the ledger's spool for the database (None: the engine has no spool)."""
    writer = kernel.ledger_writer
    spool = writer.spool
    if spool is None:
        return None
    return {
        "entries": spool.entries,
        "decisions": spool.decisions,
        "capacity": spool.capacity,
        "full": spool.full,
        "dropped_decisions": writer.dropped,
        "landed_entries": writer.drained,
    }


def latency_ms(latencies: Iterable[float], decisions: int) -> dict[str, Any]:
    """Closing message -> committed row, in ms: p50 and p99 over the latest `samples` decisions,
    and every such decision since the start (`decisions`)."""
    ms = np.asarray(list(latencies), dtype=float) * 1000
    return {
        "decisions": decisions,
        "samples": int(ms.size),
        "p50": float(np.percentile(ms, 50)) if ms.size else None,
        "p99": float(np.percentile(ms, 99)) if ms.size else None,
    }


def guard_counts(state: PairState) -> dict[str, int]:
    """What the pair's price guard held back: prices quarantined, dropped and confirmed, the
    prices held now, and the books it refused."""
    guard = state.guard
    return {
        "quarantined": guard.quarantined,
        "dropped": guard.dropped,
        "confirmed": guard.confirmed,
        "holding": guard.holding,
        "books_dropped": state.books_dropped,
        "summaries_ignored": state.summaries_ignored,
        "wicks_clamped": state.wicks_clamped,
    }


def last_candle_age(kernel: Kernel, state: PairState) -> float | None:
    """Seconds on the engine's clock since the pair's last candle closed; None before the first."""
    age = state.candle_age(kernel.clock.timestamp())
    return None if age is None else round(age, 3)
