"""The layers around the routes, outermost first: security headers, the audit, the guard (request
limits), the gate (who is calling, rate limits, CSRF), and CORS when origins are configured."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from helios_live.api.audit import AuditLayer, AuditRecorder
from helios_live.api.auth import Authenticator
from helios_live.api.gate import Gate
from helios_live.api.guards import Guard
from helios_live.api.headers import SecurityHeaders
from helios_live.api.ratelimit import RateLimiter
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings


def protect(app: FastAPI, settings: HeliosSettings, ledger: Ledger) -> AuditRecorder:
    """Wrap `app` in its layers (ConfigurationError for an unsafe users file); the audit recorder,
    whose `run` the lifespan keeps going."""
    auth = Authenticator.from_settings(settings)
    limiter = RateLimiter(settings.api.rate_per_min)
    login_limiter = RateLimiter(settings.api.login_rate_per_min)
    recorder = AuditRecorder(ledger)
    app.state.auth, app.state.login_limiter, app.state.audit = auth, login_limiter, recorder
    # `add_middleware` wraps what is there: the last added is the outermost.
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
        )
    app.add_middleware(Gate, auth=auth, limiter=limiter, login_limiter=login_limiter)
    # Only development mode (no credentials; the settings allow it on loopback only) is open to
    # any local caller, so only it needs to know its callers are local.
    app.add_middleware(Guard, local_only=auth.development)
    app.add_middleware(AuditLayer, recorder=recorder, auth=auth)
    app.add_middleware(SecurityHeaders, docs=auth.development)
    return recorder
