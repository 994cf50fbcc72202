"""The REST API through FastAPI's TestClient, lifespan included; the stream points at a closed
loopback port, so nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from helios_core.errors import ConfigurationError
from helios_live.api.app import create_app
from helios_live.settings import HeliosSettings, load_settings
from helios_live.venues.valr.simulator.fake import FakeValr
from tests.live_support import live_settings, make_bundle

TOKEN = "Kq3vZ9pW7xR2mT8yL4nB-api"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTROL = [
    "/api/autonomous-engine/start",
    "/api/autonomous-engine/stop",
    "/api/autonomous-engine/auto-trading/enable",
    "/api/autonomous-engine/auto-trading/disable",
    "/api/autonomous-engine/emergency-stop",
    "/api/autonomous-engine/emergency-stop/clear",
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = live_settings(tmp_path, api_token=TOKEN, live_ws_url="ws://127.0.0.1:9/ws/trade")
    make_bundle(settings.models_root)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_control_endpoint_refuses_a_request_without_the_token(client: TestClient) -> None:
    for path in CONTROL:
        missing = client.post(path)
        wrong = client.post(path, headers={"Authorization": "Bearer nope"})

        assert missing.status_code == 401 and wrong.status_code == 401, path
        assert missing.json() == {"detail": "a valid bearer token or session is required"}
        assert wrong.json() == {"detail": "a valid bearer token is required"}
    assert client.get("/api/autonomous-engine/status", headers=AUTH).json()["status"] == "STOPPED"


def test_start_status_stop_and_the_conflicts_between_them(client: TestClient) -> None:
    started = client.post("/api/autonomous-engine/start", headers=AUTH, json={"pairs": ["btc-perp"]})
    again = client.post("/api/autonomous-engine/start", headers=AUTH)
    status = client.get("/api/autonomous-engine/status", headers=AUTH).json()
    stopped = client.post("/api/autonomous-engine/stop", headers=AUTH)
    stop_again = client.post("/api/autonomous-engine/stop", headers=AUTH)

    assert started.status_code == 200 and started.json()["status"]["status"] == "RUNNING"
    assert status["pairs"] == ["BTCPERP"] and status["model_version"] is not None
    assert again.status_code == 409 and again.json()["code"] == "EngineStateError"
    assert stopped.status_code == 200 and stop_again.status_code == 409


def test_invalid_bodies_get_422_and_unknown_pairs_404(client: TestClient) -> None:
    bad_type = client.post("/api/autonomous-engine/start", headers=AUTH, json={"pairs": "BTCPERP"})
    extra = client.post("/api/autonomous-engine/start", headers=AUTH, json={"leverage": 100})
    live = client.post("/api/autonomous-engine/start", headers=AUTH, json={"trading_mode": "LIVE"})
    unknown = client.post("/api/autonomous-engine/start", headers=AUTH, json={"pairs": ["DOGEZAR"]})

    assert bad_type.status_code == 422 and bad_type.json()["detail"][0]["loc"] == ["body", "pairs"]
    assert extra.status_code == 422
    assert live.status_code == 409 and "/api/mode" in live.json()["detail"]
    assert unknown.status_code == 404 and "DOGEZAR" in unknown.json()["detail"]
    assert client.get("/api/autonomous-engine/pairs/DOGEZAR", headers=AUTH).status_code == 404
    assert client.get("/api/predictions", params={"pair": "DOGEZAR"}, headers=AUTH).status_code == 404
    assert client.get("/api/predictions", params={"limit": 0}, headers=AUTH).status_code == 422
    assert client.get("/api/predictions", params={"cursor": "not-a-cursor"}, headers=AUTH).status_code == 422
    assert client.get("/api/predictions", params={"since": "2022-01-01T00:00:00"}, headers=AUTH).status_code == 422


def test_switches_are_recorded_and_reported(client: TestClient) -> None:
    client.post("/api/autonomous-engine/emergency-stop", headers=AUTH, json={"reason": "drill"})
    client.post("/api/autonomous-engine/auto-trading/enable", headers=AUTH)

    status = client.get("/api/autonomous-engine/status", headers=AUTH).json()
    events = client.get("/api/engine-events", params={"kind": "EMERGENCY_STOP"}, headers=AUTH).json()["items"]
    client.post("/api/autonomous-engine/emergency-stop/clear", headers=AUTH)

    assert status["emergency_stop_active"] and status["auto_trading_enabled"]
    assert events[0]["detail"] == {"reason": "drill", "closed_positions": []}
    assert not client.get("/api/autonomous-engine/status", headers=AUTH).json()["emergency_stop_active"]


def test_health_metrics_and_prometheus(client: TestClient) -> None:
    client.post("/api/autonomous-engine/start", headers=AUTH)

    health = client.get("/health", headers=AUTH)
    engine_metrics = client.get("/api/autonomous-engine/metrics", headers=AUTH).json()
    prometheus = client.get("/metrics", headers=AUTH)

    assert health.status_code == 503  # the stream cannot connect: nothing listens on port 9
    body = health.json()
    assert {name for name, ok in body["checks"].items() if not ok} == {"stream_alive"}
    assert body["reasons"] == {"stream_alive": "stream not connected"}
    assert (
        client.get("/health/ready", headers=AUTH).status_code == 503
        and client.get("/health/live", headers=AUTH).status_code == 200
    )
    assert engine_metrics["status"] == "RUNNING" and "decision_latency_ms" in engine_metrics
    assert prometheus.headers["content-type"].startswith("text/plain")
    assert "helios_engine_running 1.0" in prometheus.text


def test_the_event_stream_needs_the_token_and_then_pushes_engine_events(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/events") as ws:
        ws.receive_json()
    assert refused.value.code == 1008

    with client.websocket_connect("/api/events", headers=AUTH) as ws:
        client.post("/api/autonomous-engine/emergency-stop", headers=AUTH)
        event = ws.receive_json()

    assert event["type"] == "engine" and event["kind"] == "EMERGENCY_STOP"


def test_openapi_documents_the_control_paths(client: TestClient) -> None:
    paths = client.get("/openapi.json", headers=AUTH).json()["paths"]

    assert set(CONTROL) | {"/api/autonomous-engine/status", "/api/predictions", "/health", "/metrics"} <= set(paths)


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ({}, True),  # development on loopback: no token needed
        ({"HELIOS_API_HOST": "0.0.0.0"}, False),  # noqa: S104 -- the refused case under test
        ({"HELIOS_ENVIRONMENT": "production"}, False),
        ({"HELIOS_ENVIRONMENT": "production", "HELIOS_API_TOKEN": "changethis"}, False),
        ({"HELIOS_ENVIRONMENT": "production", "HELIOS_API_TOKEN": TOKEN}, True),
    ],
)
def test_the_service_refuses_a_weak_token_outside_loopback_development(
    env: dict[str, str], ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    if ok:
        assert isinstance(load_settings(), HeliosSettings)
    else:
        with pytest.raises(ConfigurationError, match="HELIOS_API_TOKEN"):
            load_settings()


def test_the_mode_endpoint_refuses_live_without_the_phrase_or_credentials(client: TestClient) -> None:
    mode = client.get("/api/mode", headers=AUTH).json()
    anonymous = client.post("/api/mode", json={"mode": "LIVE", "confirmation": "I_CONFIRM_LIVE_TRADING"})
    no_phrase = client.post("/api/mode", headers=AUTH, json={"mode": "LIVE"})
    no_keys = client.post("/api/mode", headers=AUTH, json={"mode": "LIVE", "confirmation": "I_CONFIRM_LIVE_TRADING"})
    bad = client.post("/api/mode", headers=AUTH, json={"mode": "YOLO"})
    paper = client.post("/api/mode", headers=AUTH, json={"mode": "PAPER"})

    assert mode == {"mode": "PAPER", "live_order_placement": False, "exchange_credentials": False, "switch_ms": None}
    assert anonymous.status_code == 401
    assert no_phrase.status_code == 409 and "I_CONFIRM_LIVE_TRADING" in no_phrase.json()["detail"]
    assert no_keys.status_code == 409 and "credentials" in no_keys.json()["detail"]
    assert bad.status_code == 422
    assert paper.status_code == 200 and paper.json()["mode"] == "PAPER"


def test_live_needs_a_configured_token_even_in_development(tmp_path: Path) -> None:
    settings = live_settings(
        tmp_path, live_ws_url="ws://127.0.0.1:9/ws/trade", valr_api_key="k" * 16, valr_api_secret="s" * 32
    )
    make_bundle(settings.models_root)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as open_client:
        refused = open_client.post("/api/mode", json={"mode": "LIVE", "confirmation": "I_CONFIRM_LIVE_TRADING"})

    assert refused.status_code == 409 and "HELIOS_API_TOKEN" in refused.json()["detail"]


def test_live_with_phrase_token_and_credentials_switches_and_is_recorded(tmp_path: Path) -> None:
    with FakeValr(api_key="k" * 16, api_secret="s" * 32) as valr:  # VALR's read-only check, on loopback
        settings = live_settings(
            tmp_path,
            api_token=TOKEN,
            live_ws_url="ws://127.0.0.1:9/ws/trade",
            valr_api_key="k" * 16,
            valr_api_secret="s" * 32,
            valr_base_url=valr.url,
        )
        make_bundle(settings.models_root)
        switched, events = _go_live(settings)

    assert switched.status_code == 200 and switched.json()["mode"] == "LIVE"
    assert switched.json()["switch_ms"] >= 0  # reported for the operator; tests do not time it
    assert events[0]["detail"] == {"mode": "LIVE", "previous": "PAPER", "reason": "go"}


def _go_live(settings: Any) -> tuple[Any, list[dict[str, Any]]]:
    with TestClient(create_app(settings)) as live_client:
        switched = live_client.post(
            "/api/mode", headers=AUTH, json={"mode": "LIVE", "confirmation": "I_CONFIRM_LIVE_TRADING", "reason": "go"}
        )
        events = live_client.get("/api/engine-events", params={"kind": "MODE"}, headers=AUTH).json()["items"]
    return switched, events


def test_trading_pages_validate_their_queries(client: TestClient) -> None:
    assert client.get("/api/positions", headers=AUTH).json() == {"items": [], "next_cursor": None}
    assert client.get("/api/positions", params={"status": "MAYBE"}, headers=AUTH).status_code == 422
    assert client.get("/api/positions", params={"pair": "DOGEZAR"}, headers=AUTH).status_code == 404
    assert client.get("/api/positions/12345", headers=AUTH).status_code == 404
    assert client.post("/api/positions/12345/close", headers=AUTH).status_code == 404
    assert client.post("/api/positions/12345/close").status_code == 401
    assert client.get("/api/orders", params={"cursor": "bogus"}, headers=AUTH).status_code == 422
    assert client.get("/api/fills", headers=AUTH).status_code == 200
    assert client.get("/api/risk-decisions", params={"approved": "true"}, headers=AUTH).status_code == 200
    assert (
        client.get("/api/portfolio/snapshots", params={"since": "2022-01-01T00:00:00"}, headers=AUTH).status_code == 422
    )
    portfolio = client.get("/api/portfolio", headers=AUTH).json()
    assert portfolio["equity"] == portfolio["capital"] == 100_000.0 and portfolio["limits"]["max_drawdown"] == 0.15
