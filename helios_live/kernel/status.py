"""What the engine reports: status, metrics and health, as plain JSON-ready dicts."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np

from helios_core.bars import STEP
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.pair import PairState


def status(kernel: Kernel) -> dict[str, Any]:
    now, started = kernel.ops_clock.timestamp(), kernel.started_at  # the machine's time in the service
    return {
        "status": kernel.status,
        "mode": kernel.mode,
        "auto_trading_enabled": kernel.auto_trading,
        "emergency_stop_active": kernel.emergency_stop,
        "pairs": list(kernel.pairs),
        "model_version": kernel.model_version,
        "uptime_s": round(max(0.0, now - started), 3) if started is not None and kernel.status == "RUNNING" else 0.0,
    }


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
        "predictions": state.predictions,
        "pending_outcomes": len(state.pending),
        "last_candle_close": _last_close(state),
        "last_candle_age_s": last_candle_age(kernel, state),
        "queue_depth": kernel.queues[pair].qsize() if pair in kernel.queues else 0,
        "recent_candles": [bar._asdict() for bar in list(state.recent)[-5:]],
    }


def metrics(kernel: Kernel) -> dict[str, Any]:
    latencies = np.asarray(kernel.latencies, dtype=float) * 1000
    stats = kernel.client.stats
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
        "predictions": sum(s.predictions for s in kernel.states.values()),
        "verdicts": dict(kernel.verdicts),
        "errors": dict(kernel.errors + kernel.desk.errors),
        "decision_latency_ms": {
            "samples": int(latencies.size),
            "p50": float(np.percentile(latencies, 50)) if latencies.size else None,
            "p99": float(np.percentile(latencies, 99)) if latencies.size else None,
        },
        "event_subscribers_dropped": kernel.broadcaster.dropped,
    }


async def health(kernel: Kernel) -> dict[str, Any]:
    """Stream alive, ledger reachable, model loaded, last candle age per pair."""
    silent = kernel.client.silent_s()
    checks = kernel.health_checks()
    checks["ledger_reachable"] = await asyncio.to_thread(kernel.ledger.ping)
    return {
        "healthy": all(checks.values()),
        "checks": checks,
        "stream_silent_s": None if silent is None else round(silent, 3),
        "last_candle_age_s": {p: last_candle_age(kernel, s) for p, s in kernel.states.items()},
        "model_version": kernel.model_version,
    }


def _last_close(state: PairState) -> int | None:
    return state.last_ts + STEP if state.last_ts is not None else None


def last_candle_age(kernel: Kernel, state: PairState) -> float | None:
    """Seconds on the engine's clock since the pair's last candle closed; None before the first."""
    now, then = kernel.clock.timestamp(), _last_close(state)
    if then is None or math.isnan(now):
        return None
    return round(now - then, 3)
