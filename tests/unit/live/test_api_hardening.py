"""What the REST API refuses, and how: a bad request is a 4xx, never a 5xx; a development service
(no token) answers only local callers; the event stream never reads a token from its URL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from helios_live.api.app import create_app
from helios_live.api.guards import MAX_BODY, Guard, loopback_authority, loopback_origin
from helios_live.api.routers.events import SUBPROTOCOL
from helios_live.api.text import has_control
from tests.live_support import live_settings

TOKEN = "Vb7nQ3xK9mZ2wR5tL8pJ-hard"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1:8000"
EVENTS = "ws://127.0.0.1:8000/api/events"  # the test client sends WebSockets to "testserver" unless told
ABOVE_INT64 = str(2**63)
JSON = {"content-type": "application/json"}
STOP = "/api/autonomous-engine/emergency-stop"
ENABLE = "/api/autonomous-engine/auto-trading/enable"


def _client(home: Path, base_url: str, **overrides: object) -> Iterator[TestClient]:
    # No model: nothing here starts the engine, and every request is answered without one.
    settings = live_settings(home, live_ws_url="ws://127.0.0.1:9/ws/trade", **overrides)
    with TestClient(create_app(settings), base_url=base_url, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A service with a token: every caller, from anywhere, must present it."""
    yield from _client(tmp_path, "http://testserver", api_token=TOKEN)


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    """A development service without a token, called as a local process would."""
    yield from _client(tmp_path, LOCAL)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """`client` shared by the tests that change nothing (or must not)."""
    yield from _client(tmp_path_factory.mktemp("reader"), "http://testserver", api_token=TOKEN)


@pytest.fixture(scope="module")
def open_reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _client(tmp_path_factory.mktemp("open-reader"), LOCAL)


def _cursor(number: str) -> str:
    return base64.urlsafe_b64encode(number.encode()).decode()


def _auto_trading(client: TestClient) -> bool:
    enabled: bool = client.get("/api/autonomous-engine/status", headers=AUTH).json()["auto_trading_enabled"]
    return enabled


@pytest.mark.parametrize("position_id", [ABOVE_INT64, "99999999999999999999", "0", "-1"])
def test_a_position_id_outside_bigint_is_a_422(reader: TestClient, position_id: str) -> None:
    assert reader.get(f"/api/positions/{position_id}", headers=AUTH).status_code == 422
    assert reader.post(f"/api/positions/{position_id}/close", headers=AUTH).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/predictions",
        "/api/engine-events",
        "/api/positions",
        "/api/orders",
        "/api/fills",
        "/api/risk-decisions",
        "/api/portfolio/snapshots",
    ],
)
def test_a_cursor_outside_bigint_is_a_422(reader: TestClient, path: str) -> None:
    for number in (ABOVE_INT64, "9999999999999999999"):
        response = reader.get(path, params={"cursor": _cursor(number)}, headers=AUTH)

        assert response.status_code == 422 and response.json()["detail"] == "invalid cursor"
    assert reader.get(path, params={"cursor": _cursor(str(2**63 - 1))}, headers=AUTH).status_code == 200


@pytest.mark.parametrize(("literal", "echoed"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
def test_a_non_finite_number_in_a_body_is_a_422_that_echoes_it_as_a_string(
    reader: TestClient, literal: str, echoed: str
) -> None:
    response = reader.post(STOP, headers=AUTH | JSON, content=f'{{"reason": {literal}}}')

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "reason"] and error["input"] == echoed


@pytest.mark.parametrize("text", ["a\x00b", "line\nbreak", "\x1b[31m", "\x7f", "\x85", "\ud800"])
def test_control_characters_and_lone_surrogates_in_body_text_are_a_422(client: TestClient, text: str) -> None:
    bodies = [
        (STOP, {"reason": text}),
        ("/api/mode", {"mode": "PAPER", "reason": text}),
        ("/api/mode", {"mode": "LIVE", "confirmation": text}),
        ("/api/autonomous-engine/start", {"pairs": [text]}),
    ]
    for path, body in bodies:
        # json.dumps writes the escapes (`\u0000`, `\ud800`) a client would send.
        response = client.post(path, headers=AUTH | JSON, content=json.dumps(body))

        assert response.status_code == 422, (path, body)
        assert response.json()["detail"][0]["loc"][:2] == ["body", next(iter(body.keys() - {"mode"}))]
    assert not client.get("/api/autonomous-engine/status", headers=AUTH).json()["emergency_stop_active"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/engine-events", {"kind": "START\x00"}),
        ("/api/orders", {"position_key": "k\x01"}),
        ("/api/predictions", {"model_version": "\x1f"}),
        ("/api/predictions", {"cursor": "\x00"}),
        ("/api/autonomous-engine/pairs/BTC%00PERP", {}),
        ("/api/positions/1%0A", {}),
    ],
)
def test_control_characters_in_the_path_or_query_are_a_400(
    reader: TestClient, path: str, params: dict[str, str]
) -> None:
    response = reader.get(path, params=params, headers=AUTH)

    assert response.status_code == 400 and "control characters" in response.json()["detail"]


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_bound_with_no_utc_equivalent_is_a_422(reader: TestClient, since: str) -> None:
    assert reader.get("/api/predictions", params={"since": since}, headers=AUTH).status_code == 422
    assert reader.get("/api/predictions", params={"until": since}, headers=AUTH).status_code == 422
    assert reader.get("/api/portfolio/snapshots", params={"since": since}, headers=AUTH).status_code == 422


def test_a_body_above_the_limit_is_a_413(client: TestClient) -> None:
    declared = client.post(STOP, content=b" " * (MAX_BODY + 1), headers=JSON)  # no token either: refused first
    at_limit = client.post(STOP, content=b" " * (MAX_BODY - 20) + b'{"reason": "x"}', headers=AUTH | JSON)

    assert declared.status_code == 413 and "limited" in declared.json()["detail"]
    assert at_limit.status_code == 200


def test_a_streamed_body_is_read_only_up_to_the_limit() -> None:
    """Through the guard alone: the test client would read a whole streamed body before sending it."""
    chunk, reads, sent = b" " * 4096, [], []

    async def receive() -> dict[str, object]:
        reads.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}  # a body that never ends

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("the app must not see an oversized body")

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": [(b"host", b"x")]}
    anyio.run(Guard(app, local_only=False), scope, receive, send)

    assert sent[0]["status"] == 413
    assert sum(reads) == MAX_BODY + len(chunk)  # the chunk that passed the limit, and no other


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
def test_a_body_that_is_not_json_is_a_415(client: TestClient, content_type: str) -> None:
    headers = AUTH | ({"content-type": content_type} if content_type else {})
    response = client.post(STOP, headers=headers, content=b'{"reason": "x"}')

    assert response.status_code == 415
    assert (
        client.post(STOP, headers=AUTH | {"content-type": "application/json; charset=utf-8"}, json={}).status_code
        == 200
    )
    assert client.post(ENABLE, headers=AUTH | {"content-type": "text/plain"}).status_code == 200  # no body


@pytest.mark.parametrize(
    "host", ["attacker.example", "127.evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "127.1", ""]
)
def test_a_development_service_answers_only_to_a_loopback_host(open_reader: TestClient, host: str) -> None:
    response = open_reader.get("/api/portfolio", headers={"host": host})

    assert response.status_code == 400 and "loopback Host" in response.json()["detail"]
    assert open_reader.post(ENABLE, headers={"host": host}).status_code == 400
    assert not _auto_trading(open_reader)
    with pytest.raises(WebSocketDisconnect) as refused, open_reader.websocket_connect(EVENTS, headers={"host": host}):
        pass
    assert refused.value.code == 1008


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8000", "127.0.0.1", "127.0.0.2:8000", "[::1]", "[::1]:8000"])
def test_loopback_hosts_are_answered(open_reader: TestClient, host: str) -> None:
    assert open_reader.get("/api/portfolio", headers={"host": host}).status_code == 200


def test_a_service_with_a_token_answers_any_host(reader: TestClient) -> None:
    assert reader.get("/api/portfolio", headers={"host": "helios.internal.example", **AUTH}).status_code == 200


@pytest.mark.parametrize("origin", ["http://attacker.example", "null", "http://127.evil.example", "file://"])
def test_a_development_service_refuses_cross_origin_commands(open_client: TestClient, origin: str) -> None:
    # The attack: a page elsewhere posts a "simple" request, which a browser sends without asking.
    forged = open_client.post(ENABLE, headers={"origin": origin, "content-type": "text/plain"}, content=b"x")
    bare = open_client.post(ENABLE, headers={"origin": origin})

    assert forged.status_code == 403 and bare.status_code == 403
    assert not _auto_trading(open_client)
    assert open_client.get("/api/portfolio", headers={"origin": origin}).status_code == 200  # reads stay open
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        open_client.websocket_connect(EVENTS, headers={"origin": origin}),
    ):
        pass
    assert refused.value.code == 1008 and "other origins" in refused.value.reason


def test_a_development_service_takes_commands_from_local_pages_and_processes(open_client: TestClient) -> None:
    assert open_client.post(ENABLE, headers={"origin": "http://localhost:5173"}).status_code == 200
    assert open_client.post(ENABLE).status_code == 200  # curl sends no Origin
    assert _auto_trading(open_client)
    with open_client.websocket_connect(EVENTS, headers={"origin": "http://127.0.0.1:8000"}) as ws:
        open_client.post(STOP)
        assert ws.receive_json()["kind"] == "EMERGENCY_STOP"


def test_the_event_stream_reads_no_token_from_its_url(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/api/events?token={TOKEN}"):
        pass
    assert refused.value.code == 1008


def test_the_event_stream_takes_the_token_as_a_subprotocol_and_answers_without_it(client: TestClient) -> None:
    with client.websocket_connect("/api/events", subprotocols=[SUBPROTOCOL, TOKEN]) as ws:
        client.post(STOP, headers=AUTH)
        event = ws.receive_json()

    assert ws.accepted_subprotocol == SUBPROTOCOL and event["kind"] == "EMERGENCY_STOP"
    for offered in ([SUBPROTOCOL, "wrong-token"], [SUBPROTOCOL], [TOKEN, SUBPROTOCOL]):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/api/events", subprotocols=offered),
        ):
            pass
        assert refused.value.code == 1008, offered


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("127.0.0.1", True),
        ("127.255.0.9:1", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:8000", True),
        ("127.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("evil.example:127", False),
        ("[127.0.0.1]", False),
        ("127.0.0.1:99999", False),
        ("127.0.0.1:80:80", False),
        ("user@127.0.0.1", False),
        ("[::2]", False),
        ("10.0.0.1", False),
        ("", False),
    ],
)
def test_loopback_authorities_are_parsed_not_prefix_matched(value: str, local: bool) -> None:
    assert loopback_authority(value) is local


@pytest.mark.parametrize(
    ("origin", "local"),
    [
        ("http://localhost:3000", True),
        ("https://127.0.0.1", True),
        ("http://[::1]:8000", True),
        ("null", False),
        ("ftp://localhost", False),
        ("http://localhost.evil.example", False),
        ("http://localhost:3000/path", False),
        ("http://evil.example", False),
    ],
)
def test_loopback_origins(origin: str, local: bool) -> None:
    assert loopback_origin(origin) is local


def test_has_control_covers_c0_del_c1_and_surrogates_but_not_ordinary_unicode() -> None:
    assert all(has_control(c) for c in ("\x00", "\t", "\x1f", "\x7f", "\x9f", "\udfff"))
    assert not has_control("Émile's drill — R1 000 ✓")
