"""The FastAPI application of the live service, and the wiring of its engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles

from helios_core.errors import HeliosError
from helios_live.api.deps import require_viewer
from helios_live.api.errors import helios_error, invalid_request
from helios_live.api.protection import protect
from helios_live.api.responses import REFUSALS
from helios_live.api.routers import engine as engine_router
from helios_live.api.routers import events, health, llm, metrics, orders_journal, predictions, security, trading, ui
from helios_live.api.routers.alerts import router as alerts_router
from helios_live.api.routers.attribution import router as attribution_router
from helios_live.api.routers.audit import router as audit_router
from helios_live.api.routers.orchestrator import router as orchestrator_router
from helios_live.api.routers.performance import router as performance_router
from helios_live.api.routers.ui import router as ui_router
from helios_live.data.analytics import AnalyticsCache
from helios_live.kernel.build import build_kernel
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.web.pages import STATIC
from helios_live.web.pages import router as dashboard_router


def create_app(settings: HeliosSettings, kernel: Kernel | None = None) -> FastAPI:
    ledger = kernel.ledger if kernel is not None else Ledger(settings.resolved_database_url)
    engine = kernel or build_kernel(settings, ledger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ledger.migrate)
        auditing = asyncio.create_task(audit.run())
        if settings.live.autostart:
            await engine.start()
        try:
            yield
        finally:
            await engine.close()
            auditing.cancel()
            await audit.flush(final=True)
            ledger.close()

    app = FastAPI(
        title="Helios live service",
        summary="Stream -> candles -> features -> ONNX prediction -> decision chain -> ledger, under REST control.",
        version="0.1.0",
        lifespan=lifespan,
        # Swagger UI needs a looser page policy (headers.py): served in development mode only.
        docs_url=None if settings.authenticated else "/docs",
        redoc_url=None,
        exception_handlers={HeliosError: helios_error, RequestValidationError: invalid_request},
    )
    app.state.settings, app.state.engine, app.state.ledger = settings, engine, ledger
    app.state.hashing = asyncio.Semaphore(ui.HASHING)  # the login's argon2 verifications
    app.state.analytics = AnalyticsCache(settings.home)  # the marts the analytics build publishes
    app.state.metrics = metrics.registry_for(engine, app.state.analytics)
    routers = (
        engine_router.router,
        orchestrator_router,
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
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="static")
    for router in (*routers, audit_router, alerts_router, ui_router, dashboard_router):
        if router.prefix.startswith("/api"):  # the gate refuses them without a principal; this documents it
            app.include_router(router, dependencies=[Depends(require_viewer)], responses=REFUSALS)
        else:
            app.include_router(router)
    audit = protect(app, settings, ledger)
    return app
