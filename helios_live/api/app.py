"""The FastAPI application of the live service, and the wiring of its engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from helios_core.errors import ConfigurationError, HeliosError
from helios_live.api.routers import engine as engine_router
from helios_live.api.routers import events, health, metrics, predictions, trading
from helios_live.kernel.build import build_kernel
from helios_live.kernel.kernel import EngineStateError, Kernel
from helios_live.ledger import Ledger, LedgerError
from helios_live.settings import HeliosSettings
from helios_live.trading.desk import ModeError, PositionError


def create_app(settings: HeliosSettings, kernel: Kernel | None = None) -> FastAPI:
    ledger = kernel.ledger if kernel is not None else Ledger(settings.resolved_database_url)
    engine = kernel or build_kernel(settings, ledger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ledger.migrate)
        if settings.live.autostart:
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
