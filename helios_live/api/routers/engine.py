"""Kernel control, at the paths of the design's section 30."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from helios_live.api.deps import Authorized, EngineDep, SettingsDep, known_pair
from helios_live.api.responses import BOTH, CONFLICT, NOT_FOUND
from helios_live.api.schemas import Ack, EmergencyStop, EngineConfig
from helios_live.kernel import status as report

router = APIRouter(prefix="/api/autonomous-engine", tags=["engine"])


def _ack(engine: EngineDep, message: str) -> Ack:
    return Ack(message=message, status=report.status(engine))


@router.post("/start", dependencies=[Authorized], responses=BOTH)
async def start(engine: EngineDep, settings: SettingsDep, config: EngineConfig | None = None) -> Ack:
    """Start streaming and deciding; optionally for a subset of the configured pairs."""
    config = config or EngineConfig()
    if config.trading_mode == "LIVE":
        raise HTTPException(status.HTTP_409_CONFLICT, "the mode is switched with POST /api/mode, not at start")
    pairs = tuple(known_pair(p, engine, settings) for p in config.pairs) if config.pairs else None
    await engine.start(pairs)
    if config.auto_trading_enabled:
        await engine.set_auto_trading(True)
    return _ack(engine, "engine started")


@router.post("/stop", dependencies=[Authorized], responses=CONFLICT)
async def stop(engine: EngineDep) -> Ack:
    await engine.stop()
    return _ack(engine, "engine stopped")


@router.get("/status")
async def get_status(engine: EngineDep) -> dict[str, Any]:
    return report.status(engine)


@router.get("/pairs/{pair}", responses=NOT_FOUND)
async def get_pair(pair: str, engine: EngineDep, settings: SettingsDep) -> dict[str, Any]:
    """One pair's live state: candles, catch-up, queue, last candle age, recent candles."""
    return report.pair_status(engine, known_pair(pair, engine, settings))


@router.post("/auto-trading/enable", dependencies=[Authorized])
async def enable_auto_trading(engine: EngineDep) -> Ack:
    await engine.set_auto_trading(True)
    return _ack(engine, "auto-trading enabled")


@router.post("/auto-trading/disable", dependencies=[Authorized])
async def disable_auto_trading(engine: EngineDep) -> Ack:
    await engine.set_auto_trading(False)
    return _ack(engine, "auto-trading disabled")


@router.post("/emergency-stop", dependencies=[Authorized])
async def emergency_stop(engine: EngineDep, body: EmergencyStop | None = None) -> Ack:
    """Close every open position at the market and block every new entry until cleared."""
    await engine.set_emergency_stop(True, (body or EmergencyStop()).reason)
    return _ack(engine, "emergency stop active: positions closed, no new entries")


@router.post("/emergency-stop/clear", dependencies=[Authorized])
async def clear_emergency_stop(engine: EngineDep) -> Ack:
    await engine.set_emergency_stop(False)
    return _ack(engine, "emergency stop cleared")


@router.get("/metrics")
async def engine_metrics(engine: EngineDep) -> dict[str, Any]:
    """Kernel metrics as JSON; the same numbers for Prometheus are at /metrics."""
    return report.metrics(engine)
