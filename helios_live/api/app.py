"""The FastAPI application of the live service, and the wiring of its engine."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from helios_core.errors import ConfigurationError, HeliosError
from helios_live.api.routers import engine as engine_router
from helios_live.api.routers import events, health, metrics, predictions, trading
from helios_live.clock import Clock, ExchangeClock, SystemClock, as_datetime
from helios_live.data.lake import Lake
from helios_live.data.sources.valr import ValrRestSource
from helios_live.engine.desk import ModeError, PositionError
from helios_live.engine.engine import Engine, EngineStateError
from helios_live.ledger import Ledger, LedgerError
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings


def build_engine(settings: HeliosSettings, ledger: Ledger) -> Engine:
    """The engine with the parts the settings choose: clock, REST source for backfills, lake."""
    clock: Clock = ExchangeClock() if settings.live_clock == "exchange" else SystemClock()

    def rest_clock() -> datetime:
        now = clock.now()
        return as_datetime(now) if not math.isnan(now) else datetime.now(UTC)

    rest = ValrRestSource(settings.valr_base_url, settings.http_timeout_s, settings.http_max_retries, clock=rest_clock)
    lake = Lake(settings.lake_root) if settings.lake_root.exists() else None
    return Engine(settings, ledger, Registry(settings.models_root), clock, rest=rest, lake=lake)


def create_app(settings: HeliosSettings, engine: Engine | None = None) -> FastAPI:
    ledger = engine.ledger if engine is not None else Ledger(settings.resolved_database_url)
    engine = engine or build_engine(settings, ledger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ledger.migrate)
        if settings.live_autostart:
            await engine.start()
        try:
            yield
        finally:
            await engine.close()
            ledger.close()

    app = FastAPI(
        title="Helios live service",
        summary="Stream -> candles -> features -> ONNX prediction -> decision chain -> ledger, under REST control.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings, app.state.engine, app.state.ledger = settings, engine, ledger
    app.state.metrics = metrics.registry_for(engine)
    routers = (engine_router.router, predictions.router, trading.router, health.router, metrics.router, events.router)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(HeliosError, _helios_error)
    return app


_STATUS = {
    EngineStateError: status.HTTP_409_CONFLICT,
    ModeError: status.HTTP_409_CONFLICT,
    PositionError: status.HTTP_409_CONFLICT,
    ConfigurationError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    LedgerError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


async def _helios_error(request: Request, exc: Exception) -> JSONResponse:
    code = next((c for kind, c in _STATUS.items() if isinstance(exc, kind)), status.HTTP_500_INTERNAL_SERVER_ERROR)
    return JSONResponse({"detail": str(exc), "code": type(exc).__name__}, status_code=code)
