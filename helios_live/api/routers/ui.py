"""The UI's login: a session cookie (signed, HttpOnly, SameSite=Strict) and its CSRF token, for
the dashboard to come at /ui. The cookie authenticates /api as a bearer token does; a mutation it
authenticates needs the CSRF token (the gate checks it, gate.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helios_live.api.audit import DETAIL
from helios_live.api.auth import Authenticator
from helios_live.api.deps import SettingsDep, Viewer
from helios_live.api.gate import FORM, IDENTITY, PRINCIPAL
from helios_live.api.ratelimit import RateLimiter, retry_after
from helios_live.api.responses import REFUSALS
from helios_live.api.sessions import COOKIE, Session
from helios_live.api.text import Text

router = APIRouter(prefix="/ui", tags=["ui"], responses=REFUSALS)
_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=True, auto_reload=False
)
WRONG = "wrong user name or password"
HASHING = 2  # argon2 verifications at a time


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionInfo(BaseModel):
    """Who is signed in; `csrf_token` goes in the `X-CSRF-Token` header of each mutation the
    session cookie authenticates (null for a bearer token, which needs none)."""

    name: str
    role: str
    via: str
    csrf_token: str | None = None
    expires_at: datetime | None = None


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


AuthDep = Annotated[Authenticator, Depends(_auth)]


def _info(auth: Authenticator, name: str, role: str, via: str, session: Session | None) -> SessionInfo:
    if session is None:
        return SessionInfo(name=name, role=role, via=via)
    expires = datetime.fromtimestamp(session.expires, UTC)
    return SessionInfo(name=name, role=role, via=via, csrf_token=auth.sessions.csrf_token(session), expires_at=expires)


def _page(request: Request, auth: Authenticator, code: int = 200, error: str | None = None) -> HTMLResponse:
    identity = request.scope.get(IDENTITY)
    principal, session = (identity.principal, identity.session) if identity else (None, None)
    values: dict[str, Any] = {"development": auth.development, "error": error}
    if principal is not None and session is not None:
        values |= {"name": principal.name, "role": principal.role, "csrf_token": auth.sessions.csrf_token(session)}
    return HTMLResponse(_pages.get_template("login.html").render(values), status_code=code)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, auth: AuthDep) -> HTMLResponse:
    """The sign-in form; signed in, who you are and a log-out button."""
    return _page(request, auth)


async def _credentials(request: Request) -> tuple[Login, bool]:
    """The login's fields from a form or a JSON object, and whether it was a form."""
    form = request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM
    raw = await request.body()
    try:
        fields: Any = (
            {key: values[0] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()}
            if form
            else json.loads(raw)
        )
        return Login.model_validate(fields), form
    except ValidationError as exc:  # without the input: it may be the password, and the audit keeps details
        raise RequestValidationError(exc.errors(include_input=False, include_url=False)) from exc
    except (ValueError, RecursionError) as exc:  # not JSON at all, or nested past the parser's depth
        message = str(exc) if isinstance(exc, ValueError) else "JSON nested too deeply"
        raise RequestValidationError([{"type": "json_invalid", "loc": ["body"], "msg": message}]) from exc


def _cross_site(request: Request) -> bool:
    """A browser's word that the request comes from another site: `Sec-Fetch-Site` where it sends
    one, else an `Origin` that is not this service's. (A page served with `Referrer-Policy:
    no-referrer`, as this one is, posts its forms with `Origin: null`.)"""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin not in (None, "null", f"{request.url.scheme}://{request.headers.get('host', '')}")


@router.post(
    "/login",
    response_model=SessionInfo,
    responses={
        303: {"description": "a form's login: on to the dashboard (/ui), signed in"},
        404: {"description": "no users configured"},
    },
)
async def login(request: Request, auth: AuthDep, settings: SettingsDep) -> Response:
    """Sign in with `{"name", "password"}` (JSON) or the login form; sets the session cookie.
    Limited to HELIOS_API_LOGIN_RATE_PER_MIN attempts a minute per client and per user name."""
    if not auth.users:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no UI users are configured: see HELIOS_UI_USERS_FILE")
    if _cross_site(request):
        # A login needs no CSRF token (there is no session yet); another site's page must still
        # not sign a visitor in as someone else.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a login must come from this service's own page")
    body, form = await _credentials(request)
    limiter: RateLimiter = request.app.state.login_limiter
    wait = limiter.take(f"user:{body.name}")
    if wait is not None:
        detail = f"too many login attempts for this user: at most {int(limiter.capacity)} a minute"
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail, headers={"Retry-After": retry_after(wait)})
    hashing: asyncio.Semaphore = request.app.state.hashing
    async with hashing:  # argon2 takes tens of ms and 64 MiB a try: a few at a time, whoever asks
        principal = await asyncio.to_thread(auth.login, body.name, body.password)
    if principal is None:
        if form:
            request.scope[DETAIL] = WRONG
            return _page(request, auth, status.HTTP_401_UNAUTHORIZED, WRONG)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    cookie, session = auth.sessions.issue(principal.name)
    request.scope[PRINCIPAL] = principal  # the audit's "who" for this action
    info = _info(auth, principal.name, principal.role, principal.via, session)
    response: Response = (
        RedirectResponse("/ui", status.HTTP_303_SEE_OTHER) if form else JSONResponse(info.model_dump(mode="json"))
    )
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(auth.sessions.lifetime_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.ui.secure_cookie,
    )
    return response


@router.get("/session")
async def current_session(request: Request, principal: Viewer, auth: AuthDep) -> SessionInfo:
    """Who this request authenticates as, with the session's CSRF token and expiry."""
    identity = request.scope.get(IDENTITY)
    return _info(auth, principal.name, principal.role, principal.via, identity.session if identity else None)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={303: {"description": "a form's logout"}})
async def logout(request: Request, principal: Viewer, auth: AuthDep) -> Response:
    """End the session (its cookie is refused from now on, even if kept) and clear the cookie."""
    identity = request.scope.get(IDENTITY)
    if identity is not None and identity.session is not None:
        auth.sessions.revoke(identity.session)
    form = request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM
    response = RedirectResponse("/ui/login", 303) if form else Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
