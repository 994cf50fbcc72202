"""What the engine reports: status, metrics and health, as plain JSON-ready dicts."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np

from helios_live.engine.engine import Engine
from helios_live.engine.pair import PairState
from helios_live.stream.candles import STEP

STREAM_SILENT_S = 60.0  # VALR answers our PING every 20 s: a minute of silence is a dead stream


def status(engine: Engine) -> dict[str, Any]:
    return {
        "status": engine.status,
        "mode": engine.mode,
        "auto_trading_enabled": engine.auto_trading,
        "emergency_stop_active": engine.emergency_stop,
        "pairs": list(engine.pairs),
        "model_version": engine.model_version,
        "uptime_s": round(time.monotonic() - engine.started_at, 3) if engine.started_at else 0.0,
    }


def pair_status(engine: Engine, pair: str) -> dict[str, Any]:
    state = engine.states.get(pair)
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
        "last_candle_age_s": last_candle_age(engine, state),
        "queue_depth": engine.queues[pair].qsize() if pair in engine.queues else 0,
        "recent_candles": [bar._asdict() for bar in list(state.recent)[-5:]],
    }


def metrics(engine: Engine) -> dict[str, Any]:
    latencies = np.asarray(engine.latencies, dtype=float) * 1000
    stream = engine.stream.stats if engine.stream else None
    return {
        **status(engine),
        "stream": {
            "connected": bool(stream and stream.connected),
            "connects": stream.connects if stream else 0,
            "disconnects": stream.disconnects if stream else 0,
            "messages": stream.messages if stream else 0,
        },
        "messages": {"accepted": dict(engine.parser.accepted), "rejected": dict(engine.parser.rejected)},
        "candles": sum(s.candles for s in engine.states.values()),
        "late_trades": sum(s.builder.late for s in engine.states.values()),
        "backfilled_candles": sum(s.backfilled for s in engine.states.values()),
        "predictions": sum(s.predictions for s in engine.states.values()),
        "verdicts": dict(engine.verdicts),
        "errors": dict(engine.errors),
        "decision_latency_ms": {
            "samples": int(latencies.size),
            "p50": float(np.percentile(latencies, 50)) if latencies.size else None,
            "p99": float(np.percentile(latencies, 99)) if latencies.size else None,
        },
        "event_subscribers_dropped": engine.broadcaster.dropped,
    }


async def health(engine: Engine) -> dict[str, Any]:
    """Stream alive, ledger reachable, model loaded, last candle age per pair."""
    stream = engine.stream.stats if engine.stream else None
    silent = time.monotonic() - stream.last_message if stream and stream.last_message else math.inf
    ledger_ok = await asyncio.to_thread(engine.ledger.ping)
    ages = {p: last_candle_age(engine, s) for p, s in engine.states.items()}
    checks = {
        "engine_running": engine.status == "RUNNING",
        "stream_alive": bool(stream and stream.connected and silent < STREAM_SILENT_S),
        "ledger_reachable": ledger_ok,
        "model_loaded": engine.predictor is not None,
    }
    return {
        "healthy": all(checks.values()),
        "checks": checks,
        "stream_silent_s": None if math.isinf(silent) else round(silent, 3),
        "last_candle_age_s": ages,
        "model_version": engine.model_version,
    }


def _last_close(state: PairState) -> int | None:
    return state.last_ts + STEP if state.last_ts is not None else None


def last_candle_age(engine: Engine, state: PairState) -> float | None:
    """Seconds on the engine's clock since the pair's last candle closed; None before the first."""
    now, then = engine.clock.now(), _last_close(state)
    if then is None or math.isnan(now):
        return None
    return round(now - then, 3)
