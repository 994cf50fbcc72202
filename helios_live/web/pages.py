"""The dashboard's pages at /ui: server-rendered (Jinja2), refreshed in place by static/helios.js
when the engine publishes an event (/ui/stream), every control behind an operator session, a
confirmation step and the session's CSRF token (docs/dashboard.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from helios_core.errors import HeliosError
from helios_live.api.deps import EngineDep, Viewer, principal_of
from helios_live.api.principals import Principal
from helios_live.data.analytics import AnalyticsCache
from helios_live.models.registry import Registry
from helios_live.web import chart, controls, stream, views

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)
PAGES = ("overview", "positions", "decisions", "predictions", "surveillance", "models", "backtests")


def _signed_in(request: Request) -> Principal:
    """A page's caller; a browser that is not signed in is sent to the login page."""
    try:
        return principal_of(request)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_401_UNAUTHORIZED:
            raise
        raise HTTPException(status.HTTP_303_SEE_OTHER, exc.detail, headers={"Location": "/ui/login"}) from None


Page = Annotated[Principal, Depends(_signed_in)]


def _analytics(request: Request) -> Any:
    cache: AnalyticsCache = request.app.state.analytics
    return cache.read()


def _render(request: Request, who: Principal, template: str, **context: Any) -> HTMLResponse:
    engine = request.app.state.engine
    return templates.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "csrf": controls.csrf_token(request),
            "pairs": list(engine.pairs),
            "page": template.removesuffix(".html").split("/")[-1],
            "pages": PAGES,
            **context,
        },
    )


async def _context(request: Request, name: str) -> dict[str, Any]:
    engine = request.app.state.engine
    settings = request.app.state.settings
    if name == "overview":
        analytics = await asyncio.to_thread(_analytics, request)
        return {
            "o": views.overview(engine, analytics),
            "events": await asyncio.to_thread(views.events, engine),
            "alerts": await asyncio.to_thread(views.alerts, engine),
        }
    if name == "positions":
        return {"positions": await views.positions(engine)}
    if name == "decisions":
        return {"d": await views.decisions(engine)}
    if name == "predictions":
        return {"p": await views.predictions(engine)}
    if name == "surveillance":
        return {"events": await views.surveillance(engine)}
    if name == "models":
        return {"m": await asyncio.to_thread(views.models, Registry(settings.models_root))}
    if name == "backtests":
        return {"runs": await asyncio.to_thread(views.backtests, settings.home)}
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no page {name!r}")


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, who: Page) -> HTMLResponse:
    return _render(request, who, "overview.html", **await _context(request, "overview"))


@router.get("/pages/{name}", response_class=HTMLResponse)
async def page(name: str, request: Request, who: Page) -> HTMLResponse:
    return _render(request, who, f"{name}.html", **await _context(request, name))


@router.get("/fragments/{name}", response_class=HTMLResponse)
async def fragment(name: str, request: Request, who: Viewer) -> HTMLResponse:
    """A page's live part alone, for helios.js to swap in."""
    return _render(request, who, f"fragments/{name}.html", **await _context(request, name))


@router.get("/chart/{pair}", response_class=HTMLResponse)
async def chart_page(pair: str, request: Request, who: Page, engine: EngineDep) -> HTMLResponse:
    if pair not in engine.pairs:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown pair {pair!r}; this service trades {list(engine.pairs)}"
        )
    return _render(request, who, "chart.html", pair=pair)


@router.get("/data/chart/{pair}")
async def chart_data(pair: str, who: Viewer, engine: EngineDep) -> JSONResponse:
    """Candles, and markers for each position's entry and exit, and the open ones' stop and take-profit."""
    if pair not in engine.pairs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown pair {pair!r}")
    return JSONResponse(await chart.series(engine, pair))


@router.get("/backtests/report/{run:path}")
async def backtest_report(run: str, request: Request, who: Page) -> Response:
    """A backtest's own report.html, sandboxed: it is a document of its own, with its own styles."""
    root = (request.app.state.settings.home / "backtests").resolve()
    path = (root / run / "report.html").resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no backtest report {run!r}")
    response = FileResponse(path, media_type="text/html")
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    return response


@router.post("/actions/{action}", response_class=HTMLResponse)
async def action(
    action: str,
    request: Request,
    who: Viewer,
    confirmed: Annotated[str, Form()] = "",
    target: Annotated[str, Form(max_length=64)] = "",
    phrase: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Step one shows what the action will do and asks to confirm; step two (`confirmed=yes`) does it."""
    control = controls.find(action)
    controls.require_operator(who, control)
    if confirmed != "yes":
        return _render(request, who, "confirm.html", control=control, target=target, ask_phrase=control.phrase)
    registry = Registry(request.app.state.settings.models_root)
    try:
        message = await control.run(request.app.state.engine, registry, who, target, phrase)
    except HeliosError as exc:  # refused by the engine or the registry: nothing changed
        response = _render(request, who, "done.html", control=control, message=str(exc), refused=True)
        response.status_code = status.HTTP_409_CONFLICT
        return response
    return _render(request, who, "done.html", control=control, message=message, refused=False)


@router.get("/stream")
async def events(request: Request, who: Viewer) -> Response:
    """The engine's events as server-sent events: each one only tells the page to refresh."""
    return stream.response(request)
