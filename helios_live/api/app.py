"""The FastAPI application of the live service, and the wiring of its engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from helios_core.errors import HeliosError
from helios_live.api.errors import helios_error, invalid_request
from helios_live.api.guards import Guard
from helios_live.api.routers import engine as engine_router
from helios_live.api.routers import events, health, llm, metrics, orders_journal, predictions, security, trading
from helios_live.api.routers.attribution import router as attribution_router
from helios_live.api.routers.performance import router as performance_router
from helios_live.data.analytics import AnalyticsCache
from helios_live.kernel.build import build_kernel
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings


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
        exception_handlers={HeliosError: helios_error, RequestValidationError: invalid_request},
    )
    app.state.settings, app.state.engine, app.state.ledger = settings, engine, ledger
    app.state.analytics = AnalyticsCache(settings.home)  # the marts the analytics build publishes
    app.state.metrics = metrics.registry_for(engine, app.state.analytics)
    routers = (
        engine_router.router,
        predictions.router,
        trading.router,
        attribution_router,
        performance_router,
        llm.router,
        orders_journal.router,
        security.router,
        health.router,
        metrics.router,
        events.router,
    )
    for router in routers:
        app.include_router(router)
    # Only a tokenless service (development, on loopback: the settings refuse it elsewhere) is
    # open to any local caller, so only it needs to know its callers are local.
    app.add_middleware(Guard, local_only=not settings.api.token.get_secret_value())
    return app
