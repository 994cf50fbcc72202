"""The surveillance history over REST: bounds validated (422 outside them), the severity filter
applied before the limit (the source document limited first and then filtered, so a page of
LOW events hid the CRITICAL one), cursor pagination, and the dashboard's current state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helios_core.surveillance.deviation import DeviationReading
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_live.api.app import create_app
from helios_live.ledger import Ledger
from helios_live.surveillance.rows import deviation_row, event_row
from tests.live_support import live_settings, make_bundle

TOKEN = "Jd6wX3qP8vN1sK5zR7mH-scty"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = live_settings(tmp_path, api_token=TOKEN, live_ws_url="ws://127.0.0.1:9/ws/trade")
    make_bundle(settings.models_root)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def seed(ledger: Ledger, now: float) -> None:
    rows = []
    for i in range(30):  # thirty LOW events, newer than the one CRITICAL event
        severity = Severity.CRITICAL if i == 0 else Severity.LOW
        asset = "BTC" if i % 2 else "ETH"
        e = SecurityEvent(f"ev{i:02d}", "oracle_deviation", "hyperliquid", asset, severity, severity,
                          10.0 + i, {"deviation_pct": float("nan")}, now - 3600 + i, now - 3600 + i, 1)  # fmt: skip
        rows.append(event_row(e))
    old = SecurityEvent("old", "vault_anomaly", "hyperliquid", "0xvault", Severity.HIGH, Severity.HIGH, 60.0, {},
                        now - 48 * 3600, now - 48 * 3600, 1)  # fmt: skip
    rows.append(event_row(old))
    for i in range(3):
        reading = DeviationReading(
            "BTC", now - 60 * (3 - i), 100.0, 99.0 + i, 1.0 - i, None, None, 0.0, False, 5.0, 2, 0, 0
        )
        rows.append(deviation_row(reading, "hyperliquid", "oracle_deviation"))
    ledger.record_surveillance(rows)


def test_the_severity_filter_comes_before_the_limit_and_pages_follow_the_cursor(client: TestClient) -> None:
    seed(client.app.state.ledger, time.time())  # type: ignore[attr-defined]
    critical = client.get("/api/security/events", params={"severity": "CRITICAL", "limit": 5}, headers=AUTH).json()
    assert [e["event_id"] for e in critical["items"]] == ["ev00"]
    assert critical["items"][0]["indicators"] == {"deviation_pct": None}  # NaN never reaches JSON
    first = client.get("/api/security/events", params={"limit": 20}, headers=AUTH).json()
    assert len(first["items"]) == 20 and first["next_cursor"]
    rest = client.get("/api/security/events", params={"limit": 20, "cursor": first["next_cursor"]}, headers=AUTH).json()
    assert len(rest["items"]) == 10 and rest["next_cursor"] is None  # 30 within 24 h; the 48 h old one is not
    week = client.get("/api/security/events", params={"hours": 168, "type": "vault_anomaly"}, headers=AUTH).json()
    assert [e["event_id"] for e in week["items"]] == ["old"]
    btc = client.get("/api/security/events", params={"asset": "BTC", "limit": 500}, headers=AUTH).json()
    assert {e["asset"] for e in btc["items"]} == {"BTC"} and len(btc["items"]) == 15
    history = client.get("/api/security/oracle-deviations/history", params={"asset": "BTC"}, headers=AUTH).json()
    assert [r["deviation_pct"] for r in history["items"]] == [-1.0, 0.0, 1.0]  # newest first
    board = client.get("/api/security/dashboard", headers=AUTH).json()
    assert board["venues"]["hyperliquid"]["BTC"]["reference"] == 101.0
    assert len(board["active_events"]) == 31 and board["monitors"] is None


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/security/events", {"hours": 0}),
        ("/api/security/events", {"hours": 169}),
        ("/api/security/events", {"limit": 0}),
        ("/api/security/events", {"limit": 501}),
        ("/api/security/events", {"severity": "SEVERE"}),
        ("/api/security/events", {"asset": "BTC;DROP"}),
        ("/api/security/events", {"cursor": "not-a-cursor"}),
        ("/api/security/oracle-deviations/history", {"hours": 200}),
        ("/api/security/oracle-deviations/history", {"limit": 501}),
        ("/api/security/liquidation-patterns", {"limit": 201}),
        ("/api/security/liquidation-patterns", {"type": "flash_loan"}),
        ("/api/security/vault/history", {"limit": 501}),
        ("/api/security/vault/history", {"limit": 0}),
    ],
)
def test_bounds_outside_the_documented_ranges_are_422(client: TestClient, path: str, params: dict[str, object]) -> None:
    assert client.get(path, params=params, headers=AUTH).status_code == 422


def test_the_edges_of_the_ranges_are_accepted(client: TestClient) -> None:
    for path, params in [
        ("/api/security/events", {"hours": 168, "limit": 500}),
        ("/api/security/events", {"hours": 1, "limit": 1}),
        ("/api/security/oracle-deviations/history", {"hours": 168, "limit": 500}),
        ("/api/security/liquidation-patterns", {"limit": 200}),
        ("/api/security/vault/history", {"limit": 500}),
    ]:
        assert client.get(path, params=params, headers=AUTH).status_code == 200, (path, params)
