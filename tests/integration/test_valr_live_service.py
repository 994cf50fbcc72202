"""The live service in SHADOW and LIVE against a VALR on loopback, through its REST API: LIVE
refused without each precondition, an order shadowed and one really placed, a reconciliation
mismatch that blocks entries until acknowledged, and LIVE's emergency stop, with the API secret
searched for in every log line, ledger row and response body."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from helios_live.api.app import create_app
from helios_live.kernel.kernel import Kernel
from helios_live.venues.valr.signing import Credentials
from helios_live.venues.valr.simulator.fake import FakeValr
from tests.live_support import live_settings, make_bundle
from tests.valr_support import KEY, SECRET, open_stored

TOKEN = "Kq3vZ9pW7xR2mT8yL4nB-api"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHRASE = {"mode": "LIVE", "confirmation": "I_CONFIRM_LIVE_TRADING", "reason": "test"}


@pytest.fixture
def fake() -> Iterator[FakeValr]:
    with FakeValr(api_key=KEY, api_secret=SECRET) as server:
        yield server


def _settings(tmp_path: Path, fake_url: str, ws_url: str, **overrides: Any) -> Any:
    values = {
        "api_token": TOKEN,
        "live_ws_url": "ws://127.0.0.1:9/ws/trade",
        "live_pairs": ("BTCZAR",),
        "valr_api_key": KEY,
        "valr_api_secret": SECRET,
        "valr_base_url": fake_url,
        "valr_account_ws_url": ws_url,
        "valr_status_poll_s": 0.5,
    }
    settings = live_settings(tmp_path, **{**values, **overrides})
    make_bundle(settings.models_root)
    return settings


class Bodies:
    """Every response body the test saw, to search for the secret."""

    def __init__(self, client: TestClient) -> None:
        self.client, self.seen = client, []  # type: ignore[var-annotated]

    def __call__(self, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(verb, path, headers=AUTH, **kwargs)
        self.seen.append(response.text)
        return response


def _wait(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def _open(engine: Kernel, key: str) -> Any:
    return await open_stored(engine.desk, key)


def _events(call: Bodies, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = call("GET", "/api/engine-events", params={"kind": kind}).json()["items"]
    return items


def test_shadow_then_live_end_to_end_and_the_secret_appears_nowhere(
    tmp_path: Path, fake: FakeValr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(tmp_path, fake.url, fake.ws_url)
    app = create_app(settings)
    with TestClient(app) as client:
        call, engine = Bodies(client), app.state.engine
        # SHADOW: built, rounded, signed and journalled; nothing reaches VALR.
        assert call("POST", "/api/mode", json={"mode": "SHADOW"}).status_code == 200
        shadowed = client.portal.call(_open, engine, "s1")
        assert shadowed is not None and engine.desk.account.positions["s1"].quantity == pytest.approx(0.01)
        journal = call("GET", "/api/orders/journal/s1-O").json()
        assert journal["mode"] == "SHADOW" and '"baseAmount":"0.01"' in journal["request"]["body"]
        assert fake.placements == 0
        client.portal.call(engine.close_position, "s1")
        # LIVE: the phrase, then VALR's read-only check.
        assert call("POST", "/api/mode", json={"mode": "LIVE"}).status_code == 409
        assert call("POST", "/api/mode", json=PHRASE).status_code == 200
        assert call("POST", "/api/autonomous-engine/start").status_code == 200
        assert call("GET", "/api/mode").json()["live_order_placement"] is True
        client.portal.call(_open, engine, "l1")
        _wait(lambda: "l1" in engine.desk.account.positions, "the LIVE fill")
        assert len(fake.orders_by_customer_id("l1-O")) == 1
        # Someone else trades on the account: a mismatch, entries blocked until acknowledged.
        fake.place_external("BTCZAR", "BUY", 0.001)
        found = call("POST", "/api/reconciliations").json()
        assert found["ok"] is False and found["mismatches"][0]["kind"] == "unknown_trade"
        assert "reconciliation" in engine.halted()
        assert _events(call, "RECONCILIATION_MISMATCH")
        acknowledged = call(
            "POST", f"/api/reconciliations/{found['id']}/acknowledge", json={"by": "ops", "note": "mine"}
        )
        assert acknowledged.status_code == 200 and engine.halted() == ""
        assert call("POST", "/api/reconciliations").json()["ok"] is True  # acknowledged: not raised again
        # LIVE's emergency stop: cancel every open order, close at market, block entries.
        _rest_limit_order(fake.url)
        assert fake.open_orders()
        assert call("POST", "/api/autonomous-engine/emergency-stop", json={"reason": "drill"}).status_code == 200
        _wait(lambda: not engine.desk.account.positions, "the emergency close's fill")
        assert not fake.open_orders()
        kinds = [e["kind"] for e in reversed(call("GET", "/api/engine-events", params={"limit": 20}).json()["items"])]
        steps = [k for k in kinds if k.startswith("EMERGENCY")]
        assert steps == ["EMERGENCY_ORDERS_CANCELLED", "EMERGENCY_STOP", "EMERGENCY_ENTRIES_BLOCKED"]
        for path in ("/api/orders/journal", "/api/orders", "/api/fills", "/api/positions", "/api/engine-events"):
            call("GET", path, params={"limit": 1000})
        call("GET", "/api/autonomous-engine/status")
        call("GET", "/api/mode")

    ledger_rows = (
        "\n".join(sqlite3.connect(tmp_path / "helios.db").iterdump()) if (tmp_path / "helios.db").exists() else ""
    )
    if not ledger_rows:
        ledger_rows = "\n".join(sqlite3.connect(_sqlite_path(settings)).iterdump())
    assert "l1-O" in ledger_rows  # the dump is the ledger's
    for where, text in (("logs", caplog.text), ("responses", "\n".join(call.seen)), ("ledger", ledger_rows)):
        assert SECRET not in text, f"the VALR secret leaked into the {where}"
    assert KEY not in "\n".join(call.seen) and KEY not in ledger_rows


def _sqlite_path(settings: Any) -> str:
    url: str = settings.resolved_database_url
    return url.removeprefix("sqlite:///")


def _rest_limit_order(url: str) -> None:
    """A resting order on the account, placed outside Helios (the emergency stop must cancel it)."""
    body = json.dumps({"side": "BUY", "quantity": "0.001", "price": "1000000", "pair": "BTCZAR", "postOnly": True,
                       "customerOrderId": "outside-1", "timeInForce": "GTC"})  # fmt: skip
    now = int(time.time() * 1000)
    headers = Credentials(KEY, SECRET).headers(now, "POST", "/v1/orders/limit", body) | {
        "Content-Type": "application/json"
    }
    assert httpx.post(f"{url}/v1/orders/limit", content=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("overrides", "wanted"),
    [
        ({"api_token": ""}, "HELIOS_API_TOKEN"),
        ({"valr_api_key": "", "valr_api_secret": ""}, "needs VALR credentials"),
        ({"valr_api_secret": "not-the-secret-valr-knows-0123456789"}, "read-only check failed"),
        ({"valr_base_url": "http://127.0.0.1:9"}, "read-only check failed"),
    ],
    ids=["no-token", "no-credentials", "wrong-secret", "valr-unreachable"],
)
def test_live_is_refused_without_each_precondition(
    tmp_path: Path, fake: FakeValr, overrides: dict[str, Any], wanted: str
) -> None:
    settings = _settings(tmp_path, fake.url, fake.ws_url, **overrides)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a tokenless service answers loopback only
        headers = AUTH if settings.api.token.get_secret_value() else {}
        refused = client.post("/api/mode", headers=headers, json=PHRASE)
        without_phrase = client.post("/api/mode", headers=headers, json={"mode": "LIVE"})
        mode = client.get("/api/mode", headers=headers).json()["mode"]

    assert refused.status_code == 409 and wanted in refused.json()["detail"], refused.json()
    assert without_phrase.status_code == 409 and mode == "PAPER"
    assert "not-the-secret" not in refused.text


def test_live_is_refused_while_paper_positions_are_open(tmp_path: Path, fake: FakeValr) -> None:
    app = create_app(_settings(tmp_path, fake.url, fake.ws_url))
    with TestClient(app) as client:
        client.portal.call(_open, app.state.engine, "p1")
        refused = client.post("/api/mode", headers=AUTH, json=PHRASE)

    assert refused.status_code == 409 and "position(s) open" in refused.json()["detail"]


def test_live_again_after_paper_keeps_one_account_stream(tmp_path: Path, fake: FakeValr) -> None:
    app = create_app(_settings(tmp_path, fake.url, fake.ws_url))
    with TestClient(app) as client:
        assert client.post("/api/autonomous-engine/start", headers=AUTH).status_code == 200
        for mode in (PHRASE, {"mode": "PAPER"}, PHRASE):
            assert client.post("/api/mode", headers=AUTH, json=mode).status_code == 200
        _wait(lambda: fake.connections >= 1, "the account stream")
        time.sleep(0.3)  # a second stream, if one were started, connects within this
        assert fake.connections == 1
