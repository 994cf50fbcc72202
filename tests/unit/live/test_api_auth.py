"""Authentication, roles, sessions, CSRF, rate limits, CORS, headers and the audit of the API
(docs/live.md, "Security"). Callers at other addresses are simulated in the ASGI scope only;
every request goes to the app in process."""

from __future__ import annotations

import asyncio
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from helios_core.errors import ConfigurationError
from helios_live.api.app import create_app
from helios_live.api.audit import ITEMISED_PER_CLIENT, AuditRecorder
from helios_live.api.ratelimit import RateLimiter, retry_after
from helios_live.api.sessions import COOKIE, Sessions
from helios_live.api.users import add_user
from helios_live.cli import live_app
from helios_live.ledger import Ledger
from tests.live_support import live_settings, make_bundle

OPERATOR_TOKEN = "Op7kQ2wM5nV8xB4pL9tC-auth"  # noqa: S105 -- test secrets
VIEWER_TOKEN = "Vw3jR6yN1qZ8mK5tH2cX-auth"  # noqa: S105
SECRET = "Ss9fD4gH7jK2lZ5xC8vB-auth"  # noqa: S105
PASSWORD = "correct horse battery"  # noqa: S105
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
REMOTE = "203.0.113.9"  # a documentation address, only ever written into the ASGI scope
STOP = "/api/autonomous-engine/emergency-stop"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SimulatedClients:
    """Sets the scope's client address from an `x-test-client` header: one app, several callers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if name == b"x-test-client":
                    scope["client"] = (value.decode(), 40000)
        await self.app(scope, receive, send)


def _users(home: Path) -> Path:
    path = home / "ui-users"
    add_user(path, "olga", "operator", PASSWORD)
    add_user(path, "victor", "viewer", PASSWORD)
    return path


def _client(home: Path, base_url: str = "http://testserver", **overrides: Any) -> Iterator[TestClient]:
    values: dict[str, Any] = {
        "api_token": OPERATOR_TOKEN,
        "api_viewer_token": VIEWER_TOKEN,
        "ui_users_file": _users(home),
        "ui_session_secret": SECRET,
        "live_ws_url": "ws://127.0.0.1:9/ws/trade",
    }
    settings = live_settings(home, **{**values, **overrides})
    make_bundle(settings.models_root)
    app = SimulatedClients(create_app(settings))
    with TestClient(app, base_url=base_url, client=("127.0.0.1", 50000)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the schema, path parameters filled in: a new route is in here."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), re.sub(r"\{[^}]+\}", "1", path)) for path, item in paths.items() for method in item]


def _login(client: TestClient, name: str = "olga", password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/ui/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _stopped(client: TestClient) -> bool:
    return bool(client.get("/api/autonomous-engine/status", headers=OPERATOR).json()["emergency_stop_active"])


def _audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    # From a client of its own: the audit's reader must not spend the buckets a test is filling.
    headers = {**OPERATOR, "x-test-client": "127.0.0.99"}
    response = client.get("/api/audit", headers=headers, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("credentials", ["token", "users"])
def test_every_read_under_api_needs_a_principal_once_credentials_are_configured(
    tmp_path: Path, credentials: str
) -> None:
    overrides = {"api_viewer_token": "", "ui_users_file": None} if credentials == "token" else {"api_token": ""}
    for client in _client(tmp_path, **overrides):
        reads = [path for method, path in _operations(client) if method == "GET" and path.startswith("/api")]
        for path in reads:
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.json()["detail"] == "a valid bearer token or session is required"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/events"):
            pass
        assert refused.value.code == 1008
    assert len(reads) > 20


def test_a_viewer_reads_but_every_operator_action_is_refused(client: TestClient) -> None:
    operations = _operations(client)
    actions = [(m, p) for m, p in operations if m != "GET" and p.startswith("/api")] + [("GET", "/api/audit")]
    reads = [(m, p) for m, p in operations if m == "GET" and p.startswith("/api") and p != "/api/audit"]

    refused = {(m, p): client.request(m, p, headers=VIEWER) for m, p in actions}
    read = {p: client.get(p, headers=VIEWER).status_code for _, p in reads}

    assert len(actions) >= 10
    for operation, response in refused.items():
        assert response.status_code == 403, operation
        assert response.json()["detail"] == "this action needs the operator role; 'viewer-token' is a viewer"
    assert not {path for path, code in read.items() if code in (401, 403)}
    assert not _stopped(client)
    with client.websocket_connect("/api/events", headers=VIEWER):
        pass  # reading the event stream is a viewer's right too


def test_a_wrong_bearer_token_is_refused_even_beside_a_valid_session(client: TestClient) -> None:
    _login(client)

    wrong = client.get("/api/positions", headers={"Authorization": "Bearer not-the-token"})

    assert wrong.status_code == 401 and wrong.json()["detail"] == "a valid bearer token is required"


def test_login_with_the_right_password_sets_a_strict_http_only_cookie(client: TestClient) -> None:
    response = client.post("/ui/login", json={"name": "olga", "password": PASSWORD})
    cookie = response.headers["set-cookie"]

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["role"], body["via"]) == ("olga", "operator", "session")
    assert body["csrf_token"] and datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC) + timedelta(hours=11)
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie and "Path=/" in cookie and "Secure" not in cookie
    assert client.get("/api/positions").status_code == 200  # the cookie authenticates /api
    assert client.get("/ui/session").json()["csrf_token"] == body["csrf_token"]


def test_login_over_https_marks_the_cookie_secure_and_sends_hsts(tmp_path: Path) -> None:
    for client in _client(tmp_path, base_url="https://testserver"):
        response = client.post("/ui/login", json={"name": "victor", "password": PASSWORD})

        assert "Secure" in response.headers["set-cookie"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize(("name", "password"), [("olga", "wrong password here"), ("nobody", PASSWORD)])
def test_login_with_a_wrong_name_or_password_is_a_401_without_a_cookie(
    client: TestClient, name: str, password: str
) -> None:
    response = client.post("/ui/login", json={"name": name, "password": password})

    assert response.status_code == 401 and response.json() == {"detail": "wrong user name or password"}
    assert "set-cookie" not in response.headers
    assert client.get("/api/positions").status_code == 401


def test_the_login_form_signs_in_and_the_page_has_no_inline_script(client: TestClient) -> None:
    page = client.get("/ui/login")
    signed_in = client.post("/ui/login", data={"name": "victor", "password": PASSWORD}, follow_redirects=False)
    after = client.get("/ui/login")

    assert page.status_code == 200 and 'action="/ui/login"' in page.text and 'name="password"' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    assert page.headers["Content-Security-Policy"] == CSP
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui"
    assert "Signed in as <strong>victor</strong> (viewer)" in after.text


def test_a_forged_a_tampered_and_an_expired_cookie_are_401(client: TestClient, tmp_path: Path) -> None:
    genuine = Sessions(SECRET.encode(), 3600)
    forged, _ = Sessions(b"another secret entirely", 3600).issue("olga")
    valid, _ = genuine.issue("olga")
    tampered = valid.replace(valid[:4], "AAAA", 1)
    expired, _ = Sessions(SECRET.encode(), 3600, now=lambda: time.time() - 13 * 3600).issue("olga")

    answers = {}
    for label, value in (("forged", forged), ("tampered", tampered), ("expired", expired)):
        client.cookies.set(COOKIE, value)
        answers[label] = client.post(STOP, headers={"X-CSRF-Token": "x"})
    client.cookies.set(COOKIE, valid)

    assert {label: r.status_code for label, r in answers.items()} == dict.fromkeys(answers, 401)
    assert answers["forged"].json()["detail"] == "the session cookie is not valid: log in again at /ui/login"
    assert answers["expired"].json()["detail"] == "the session has expired: log in again at /ui/login"
    assert client.get("/api/positions").status_code == 200  # the genuine one, same secret, passes
    assert not _stopped(client)


def test_a_cookie_mutation_needs_the_session_s_csrf_token(client: TestClient, tmp_path: Path) -> None:
    csrf = _login(client)["csrf_token"]
    other = Sessions(SECRET.encode(), 3600)
    _, stranger = other.issue("olga")

    missing = client.post(STOP, json={"reason": "drill"})
    wrong = client.post(STOP, headers={"X-CSRF-Token": other.csrf_token(stranger)})
    stopped_before = _stopped(client)
    accepted = client.post(STOP, headers={"X-CSRF-Token": csrf}, json={"reason": "drill"})

    assert missing.status_code == 403 and wrong.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    assert not stopped_before
    assert accepted.status_code == 200 and _stopped(client)
    assert client.post(STOP, headers={**OPERATOR}).status_code == 200  # a bearer token needs no CSRF token


def test_logout_takes_the_form_field_and_the_cookie_is_refused_afterwards(client: TestClient) -> None:
    csrf = _login(client)["csrf_token"]
    kept = client.cookies[COOKIE]

    without = client.post("/ui/logout", data={"note": "x"}, follow_redirects=False)
    out = client.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    client.cookies.set(COOKIE, kept)  # a client that keeps the cookie anyway

    assert without.status_code == 403
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]
    again = client.get("/api/positions")
    assert (
        again.status_code == 401 and again.json()["detail"] == "the session was logged out: log in again at /ui/login"
    )


def test_a_viewer_session_cannot_act_even_with_its_csrf_token(client: TestClient) -> None:
    csrf = _login(client, "victor")["csrf_token"]

    refused = client.post(STOP, headers={"X-CSRF-Token": csrf})

    assert (
        refused.status_code == 403
        and refused.json()["detail"] == "this action needs the operator role; 'victor' is a viewer"
    )
    assert not _stopped(client)


def test_a_cookie_websocket_from_another_page_is_refused(client: TestClient) -> None:
    _login(client)

    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/api/events", headers={"origin": "https://attacker.example"}),
    ):
        pass
    with client.websocket_connect("/api/events", headers={"origin": "http://testserver"}):
        pass

    assert refused.value.code == 1008


def test_a_burst_past_the_rate_limit_is_a_429_with_retry_after(tmp_path: Path) -> None:
    for client in _client(tmp_path, api_rate_per_min=5):
        answers = [client.get("/api/positions", headers=VIEWER).status_code for _ in range(5)]
        limited = client.get("/api/positions", headers=VIEWER)
        elsewhere = client.get("/api/positions", headers={**OPERATOR, "x-test-client": "127.0.0.2"})

        assert answers == [200] * 5
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["detail"] == "too many requests: at most 5 a minute per client and per principal"
        assert elsewhere.status_code == 200  # another client and another principal: buckets of their own


def test_login_is_limited_more_strictly_per_client_and_per_user_name(tmp_path: Path) -> None:
    for client in _client(tmp_path, api_login_rate_per_min=3):
        wrong = [client.post("/ui/login", json={"name": "olga", "password": "not it at all"}) for _ in range(3)]
        right = client.post("/ui/login", json={"name": "olga", "password": PASSWORD})
        other_client = client.post(
            "/ui/login", json={"name": "olga", "password": PASSWORD}, headers={"x-test-client": "127.0.0.3"}
        )
        other_user = client.post(
            "/ui/login", json={"name": "victor", "password": PASSWORD}, headers={"x-test-client": "127.0.0.4"}
        )

        assert [r.status_code for r in wrong] == [401] * 3
        assert right.status_code == 429 and "Retry-After" in right.headers
        assert right.json()["detail"] == "too many login attempts: at most 3 a minute per client"
        assert other_client.status_code == 429  # the name has had its attempts too
        assert other_client.json()["detail"] == "too many login attempts for this user: at most 3 a minute"
        assert other_user.status_code == 200
        assert client.get("/api/positions", headers=VIEWER).status_code == 200  # other routes are not limited by it


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options(
        STOP, headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    simple = client.get("/api/positions", headers={**VIEWER, "Origin": "https://elsewhere.example"})

    assert not [name for name in preflight.headers if name.lower().startswith("access-control-")]
    assert not [name for name in simple.headers if name.lower().startswith("access-control-")]


def test_cors_allows_exactly_the_configured_origins(tmp_path: Path) -> None:
    for client in _client(tmp_path, api_cors_origins="https://desk.example"):
        ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        allowed = client.options(STOP, headers={"Origin": "https://desk.example", **ask})
        other = client.options(STOP, headers={"Origin": "https://elsewhere.example", **ask})

        assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
        assert "access-control-allow-origin" not in other.headers


def test_security_headers_are_on_every_response(client: TestClient) -> None:
    answers = [
        client.get("/api/positions", headers=VIEWER),
        client.get("/api/positions"),
        client.get("/ui/login"),
        client.get("/nowhere"),
        client.post(STOP, headers={**OPERATOR, "content-type": "text/plain"}, content=b"x"),
    ]

    for response in answers:
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response.headers  # plain http here
    assert client.get("/docs").status_code == 404  # Swagger UI's inline script: development mode only


def test_health_and_metrics_are_open_on_loopback_only(client: TestClient) -> None:
    paths = ["/health", "/health/ready", "/health/live", "/metrics"]
    remote = {"x-test-client": REMOTE}

    here = {"host": "127.0.0.1:8000"}  # a probe on this machine: curl, a local Prometheus
    local = {path: client.get(path, headers=here).status_code for path in paths}
    refused = {path: client.get(path, headers=remote) for path in paths}
    with_token = {path: client.get(path, headers={**remote, **VIEWER}).status_code for path in paths}
    # a local proxy forwarding someone else, or a page elsewhere whose name resolves to 127.0.0.1
    proxied = {path: client.get(path, headers={**here, "x-forwarded-for": "203.0.113.9"}) for path in paths}
    rebound = {path: client.get(path, headers={"host": "evil.example:8000"}) for path in paths}

    assert not {path for path, code in local.items() if code in (401, 403)}
    assert {path: r.status_code for path, r in refused.items()} == dict.fromkeys(paths, 401)
    assert {path: r.status_code for path, r in proxied.items()} == dict.fromkeys(paths, 401)
    assert {path: r.status_code for path, r in rebound.items()} == dict.fromkeys(paths, 401)
    assert not {path for path, code in with_token.items() if code in (401, 403)}
    schema = client.get("/openapi.json").json()["paths"]
    assert all("loopback" in schema[path]["get"]["description"] for path in paths)


def test_each_refusal_is_recorded_and_changes_nothing(client: TestClient) -> None:
    csrf = _login(client)["csrf_token"]
    client.post(STOP)  # the session cookie without its CSRF token
    client.cookies.clear()
    client.get("/api/positions")  # no credentials
    client.post(STOP, headers=VIEWER)  # a viewer
    client.post(STOP, headers={**OPERATOR, "content-type": "application/json"}, content=b"x" * (65 * 1024))
    client.post(STOP, headers={**OPERATOR, "content-type": "application/json"}, content=b"{not json")
    client.post(STOP, headers={**OPERATOR, "content-type": "text/plain"}, content=b"x")
    client.cookies.set(COOKIE, "forged.cookie")
    client.post(STOP, headers={"X-CSRF-Token": csrf})
    client.cookies.clear()

    refusals = {(r["status"], r["detail"], r["principal"]) for r in _audit(client, kind="REFUSED")}

    assert not _stopped(client)
    assert {
        (
            403,
            "a request authenticated by the session cookie needs the session's CSRF token in the X-CSRF-Token"
            " header or the csrf_token form field",
            "olga",
        ),
        (401, "a valid bearer token or session is required", None),
        (403, "this action needs the operator role; 'viewer-token' is a viewer", "viewer-token"),
        (413, "the body is limited to 65536 bytes", "operator-token"),
        (415, "a request body must be JSON (Content-Type: application/json)", "operator-token"),
        (401, "the session cookie is not valid: log in again at /ui/login", None),
    } <= refusals
    assert 422 in {status for status, _, _ in refusals}
    assert not _audit(client, kind="ACTION", principal="viewer-token")
    row = next(r for r in _audit(client, kind="REFUSED") if r["status"] == 413)
    assert (row["client"], row["method"], row["path"], row["via"]) == ("127.0.0.1", "POST", STOP, "token")


def test_a_burst_of_refusals_is_recorded_with_its_count(tmp_path: Path) -> None:
    for client in _client(tmp_path, api_rate_per_min=3):
        answers = [client.get("/api/positions", headers=VIEWER).status_code for _ in range(6)]

        limited = [r for r in _audit(client, kind="REFUSED") if r["status"] == 429]

        assert answers == [200] * 3 + [429] * 3
        assert len(limited) == 3 and {r["principal"] for r in limited} == {"viewer-token"}


def test_operator_actions_are_recorded_with_who_when_and_what(client: TestClient) -> None:
    csrf = _login(client)["csrf_token"]
    before = datetime.now(UTC)

    client.post(STOP, headers={"X-CSRF-Token": csrf}, json={"reason": "drill"})
    client.post("/api/autonomous-engine/emergency-stop/clear", headers=OPERATOR)

    actions = _audit(client, kind="ACTION")
    stop = next(a for a in actions if a["path"] == STOP)
    clear = next(a for a in actions if a["path"].endswith("/clear"))
    login = next(a for a in actions if a["path"] == "/ui/login")
    assert (stop["principal"], stop["role"], stop["via"], stop["status"]) == ("olga", "operator", "session", 200)
    assert stop["body"] == '{"reason":"drill"}' and datetime.fromisoformat(stop["at"]) >= before
    assert (clear["principal"], clear["via"]) == ("operator-token", "token")
    assert login["principal"] == "olga" and login["body"] is None  # a login's body is never kept


def test_refusals_past_the_sample_are_counted_per_client_and_minute(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'audit.db'}")
    ledger.migrate()
    clock = [datetime(2026, 12, 6, 12, 0, 5, tzinfo=UTC)]
    recorder = AuditRecorder(ledger, now=lambda: clock[0])

    async def burst() -> None:
        for _ in range(ITEMISED_PER_CLIENT + 25):
            recorder.refused("198.51.100.7", "GET", "/api/positions", 401, "a valid bearer token is required", None)
        recorder.refused("127.0.0.1", "GET", "/api/positions", 401, "a valid bearer token is required", None)
        await recorder.flush()
        clock[0] += timedelta(minutes=1)
        await recorder.flush()

    asyncio.run(burst())
    rows = ledger.audit(limit=1000).items
    ledger.close()

    itemised = [r for r in rows if r["kind"] == "REFUSED" and r["client"] == "198.51.100.7"]
    (suppressed,) = [r for r in rows if r["kind"] == "SUPPRESSED"]
    assert len(itemised) == ITEMISED_PER_CLIENT
    assert (suppressed["client"], suppressed["status"], suppressed["count"]) == ("198.51.100.7", 401, 25)
    assert suppressed["at"] == datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert [r["client"] for r in rows if r["kind"] == "REFUSED" and r["client"] == "127.0.0.1"] == ["127.0.0.1"]


def test_development_mode_is_the_local_operator(tmp_path: Path) -> None:
    settings = live_settings(tmp_path, live_ws_url="ws://127.0.0.1:9/ws/trade")
    make_bundle(settings.models_root)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        session = client.get("/ui/session").json()
        positions = client.get("/api/positions")
        login = client.post("/ui/login", json={"name": "olga", "password": PASSWORD})

    assert session == {"name": "local", "role": "operator", "via": "loopback", "csrf_token": None, "expires_at": None}
    assert positions.status_code == 200 and login.status_code == 404


def test_a_users_file_others_can_read_is_refused(tmp_path: Path) -> None:
    users = _users(tmp_path)
    users.chmod(0o644)

    with pytest.raises(ConfigurationError, match="has mode 0o644: make it 0600"):
        create_app(live_settings(tmp_path, ui_users_file=users))


def test_the_cli_adds_users_from_stdin_into_a_0600_file(tmp_path: Path) -> None:
    users = tmp_path / "conf" / "ui-users"
    runner = CliRunner()

    added = runner.invoke(
        live_app, ["users", "add", "olga", "--role", "operator", "--file", str(users)], input=f"{PASSWORD}\n"
    )
    again = runner.invoke(
        live_app, ["users", "add", "olga", "--role", "viewer", "--file", str(users)], input=f"{PASSWORD}\n"
    )
    short = runner.invoke(live_app, ["users", "add", "bob", "--file", str(users)], input="short\n")

    assert added.exit_code == 0 and "added olga (operator)" in added.output
    assert again.exit_code == 0 and "updated olga (viewer)" in again.output
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    (line,) = users.read_text().splitlines()
    assert line.startswith("olga viewer $argon2id$") and PASSWORD not in users.read_text()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"api_viewer_token": "short"}, "HELIOS_API_VIEWER_TOKEN"),
        ({"api_viewer_token": OPERATOR_TOKEN}, "HELIOS_API_VIEWER_TOKEN must differ"),
        ({"ui_session_secret": "passwordpassword1234"}, "HELIOS_UI_SESSION_SECRET"),
        ({"api_cors_origins": "*"}, "is not an origin"),
    ],
)
def test_weak_or_wrong_security_settings_are_refused(tmp_path: Path, overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        live_settings(tmp_path, api_token=OPERATOR_TOKEN, **overrides)


def test_a_bucket_refills_continuously_and_takes_from_every_key_or_none() -> None:
    clock = [100.0]
    limiter = RateLimiter(2, now=lambda: clock[0])

    burst = [limiter.take("client:a", "principal:p") for _ in range(2)]
    empty = limiter.take("client:a", "principal:p")
    other_client = limiter.take("client:b", "principal:p")  # the principal's bucket is empty too
    clock[0] += 30.0  # one request's worth at 2 a minute
    refilled = limiter.take("client:a", "principal:p")

    assert burst == [None, None]
    assert empty == pytest.approx(30.0) and other_client == pytest.approx(30.0)
    assert refilled is None
    assert limiter.take("client:b") is None  # the refused request took nothing from client:b
    assert retry_after(0.2) == "1" and retry_after(30.0) == "30" and retry_after(30.1) == "31"


def test_a_login_from_another_site_a_nested_body_and_an_odd_length_are_refused_clearly(client: TestClient) -> None:
    elsewhere = client.post(
        "/ui/login", json={"name": "olga", "password": PASSWORD}, headers={"origin": "https://evil.example"}
    )
    sandboxed = client.post(  # a sandboxed frame elsewhere: Origin null, but the browser says cross-site
        "/ui/login",
        json={"name": "olga", "password": PASSWORD},
        headers={"origin": "null", "sec-fetch-site": "cross-site"},
    )
    own_page = client.post(  # this service's own form, under Referrer-Policy: no-referrer
        "/ui/login",
        json={"name": "olga", "password": PASSWORD},
        headers={"origin": "null", "sec-fetch-site": "same-origin"},
    )
    nested = client.post("/ui/login", content=b"[" * 60_000, headers={"content-type": "application/json"})
    odd = client.post(STOP, headers={**OPERATOR, "content-length": "9" * 5000}, content=b"")  # past int()'s digits
    assert elsewhere.status_code == 403 and "this service's own page" in elsewhere.json()["detail"]
    assert "set-cookie" not in elsewhere.headers
    assert sandboxed.status_code == 403 and own_page.status_code == 200
    assert nested.status_code == 422 and nested.json()["detail"][0]["msg"] == "JSON nested too deeply"
    assert odd.status_code == 400 and odd.json()["detail"] == "invalid Content-Length"
    assert client.get("/api/autonomous-engine/status", headers=OPERATOR).json()["status"] == "STOPPED"
