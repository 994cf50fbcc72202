"""The order journal over REST: GET /api/orders/journal (filters, cursor pagination),
GET /api/orders/journal/{client_order_id} with its transitions, GET /api/reconciliations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helios_live.api.app import create_app
from helios_live.ledger import Ledger
from tests.ledger_support import MINUTE, T0
from tests.live_support import live_settings, make_bundle
from tests.unit.live.test_ledger_orders import OPENING, intent, step

TOKEN = "Jd6wX3qP8vN1sK5zR7mH-jrnl"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAIR = "BTCPERP"  # the pair the test service trades


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = live_settings(tmp_path, api_token=TOKEN, live_ws_url="ws://127.0.0.1:9/ws/trade")
    make_bundle(settings.models_root)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def ledger_of(client: TestClient) -> Ledger:
    ledger: Ledger = client.app.state.ledger  # type: ignore[attr-defined]
    return ledger


def seed(client: TestClient) -> None:
    ledger = ledger_of(client)
    for i in range(5):
        ledger.record_intent(intent(f"hx-{i}", pair=PAIR if i % 2 == 0 else "ETHZAR", minute=i))
    ledger.record_transitions(
        [
            step("hx-0", "ACCEPTED", 5, venue_order_id="v-0"),
            step("hx-0", "FILLED", 6, filled_quantity=0.0004, average_price=100.0, fee=0.04),
            step("hx-2", "UNKNOWN", 7, detail="timeout after 5 s"),
        ]
    )


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_journal_page_filters_and_walks(client: TestClient) -> None:
    assert get(client, "/api/orders/journal") == {"items": [], "next_cursor": None}
    seed(client)

    every = get(client, "/api/orders/journal")["items"]
    first = get(client, "/api/orders/journal", limit=3)
    rest = get(client, "/api/orders/journal", limit=3, cursor=first["next_cursor"])

    assert [i["client_order_id"] for i in every] == ["hx-4", "hx-3", "hx-2", "hx-1", "hx-0"]
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in every]
    assert rest["next_cursor"] is None

    def ids(**params: Any) -> list[str]:
        return [i["client_order_id"] for i in get(client, "/api/orders/journal", **params)["items"]]

    assert ids(status="FILLED") == ["hx-0"] and ids(status="UNKNOWN") == ["hx-2"]
    assert ids(status="NEW") == ["hx-4", "hx-3", "hx-1"]
    assert ids(pair="btc-perp") == ["hx-4", "hx-2", "hx-0"]  # the pair by any of its spellings

    filled = every[-1]
    assert (filled["status"], filled["venue_order_id"], filled["filled_quantity"]) == ("FILLED", "v-0", 0.0004)
    assert filled["average_price"] == 100.0 and filled["fee"] == 0.04
    assert filled["created_at"] == "2026-01-01T00:00:00Z" and filled["updated_at"] == "2026-01-01T00:06:00Z"
    assert filled["opening"] == OPENING and filled["request"]["verb"] == "POST"
    assert filled["request"]["body"]["customerOrderId"] == "hx-0" and "transitions" not in filled


def test_one_order_comes_with_its_transitions(client: TestClient) -> None:
    seed(client)
    listed = {i["client_order_id"]: i for i in get(client, "/api/orders/journal")["items"]}

    detail = get(client, "/api/orders/journal/hx-0")

    assert {k: v for k, v in detail.items() if k != "transitions"} == listed["hx-0"]
    assert [t["status"] for t in detail["transitions"]] == ["NEW", "ACCEPTED", "FILLED"]
    assert detail["transitions"][1]["venue_order_id"] == "v-0"
    assert detail["transitions"][2]["at"] == "2026-01-01T00:06:00Z"
    assert get(client, "/api/orders/journal/hx-2")["transitions"][1]["detail"] == "timeout after 5 s"

    missing = client.get("/api/orders/journal/hx-404", headers=AUTH)
    assert missing.status_code == 404 and "no journalled order" in missing.json()["detail"]


def test_reconciliation_runs_page_newest_first(client: TestClient) -> None:
    ledger = ledger_of(client)
    assert get(client, "/api/reconciliations") == {"items": [], "next_cursor": None}
    mismatch = {"kind": "balance", "pair": PAIR, "detail": "exchange 0.001, ledger 0", "exchange": 0.001}
    ok = ledger.record_reconciliation(T0, [])
    bad = ledger.record_reconciliation(T0 + MINUTE, [mismatch])
    ledger.acknowledge_reconciliation(bad, "ops", T0 + 2 * MINUTE, "manual deposit")
    latest = ledger.record_reconciliation(T0 + 3 * MINUTE, [mismatch])

    first = get(client, "/api/reconciliations", limit=2)
    rest = get(client, "/api/reconciliations", limit=2, cursor=first["next_cursor"])

    items = first["items"] + rest["items"]
    assert [i["id"] for i in items] == [latest, bad, ok] and rest["next_cursor"] is None
    assert items[0]["ok"] is False and items[0]["acknowledged_at"] is None and items[0]["mismatches"] == [mismatch]
    assert items[1]["acknowledged_by"] == "ops" and items[1]["acknowledged_at"] == "2026-01-01T00:02:00Z"
    assert items[1]["note"] == "manual deposit" and items[2] == {
        "id": ok,
        "at": "2026-01-01T00:00:00Z",
        "ok": True,
        "mismatches": [],
        "acknowledged_at": None,
        "acknowledged_by": None,
        "note": "",
    }


def test_reads_need_a_principal_as_the_other_ledger_pages_do(client: TestClient) -> None:
    seed(client)

    assert client.get("/api/orders/journal", headers=AUTH).status_code == 200
    assert client.get("/api/orders/journal/hx-0", headers=AUTH).status_code == 200
    assert client.get("/api/reconciliations", headers=AUTH).status_code == 200
    assert client.get("/api/orders/journal").status_code == 401
    assert client.get("/api/orders/journal/hx-0").status_code == 401


def test_invalid_queries_get_4xx(client: TestClient) -> None:
    assert client.get("/api/orders/journal", params={"pair": "DOGEZAR"}, headers=AUTH).status_code == 404
    assert client.get("/api/orders/journal", params={"status": "DONE"}, headers=AUTH).status_code == 422
    assert client.get("/api/orders/journal", params={"limit": 0}, headers=AUTH).status_code == 422
    assert client.get("/api/orders/journal", params={"limit": 1001}, headers=AUTH).status_code == 422
    assert client.get("/api/orders/journal", params={"cursor": "bogus"}, headers=AUTH).status_code == 422
    assert client.get("/api/reconciliations", params={"cursor": "bogus"}, headers=AUTH).status_code == 422
    assert client.get("/api/reconciliations", params={"limit": 0}, headers=AUTH).status_code == 422
    assert client.get("/api/orders/journal/hx%00", headers=AUTH).status_code == 400
    assert client.get("/api/orders/journal/" + "x" * 500, headers=AUTH).status_code == 404


def test_openapi_documents_the_journal_paths(client: TestClient) -> None:
    paths = client.get("/openapi.json", headers=AUTH).json()["paths"]

    assert {"/api/orders/journal", "/api/orders/journal/{client_order_id}", "/api/reconciliations"} <= set(paths)
    assert {p["name"] for p in paths["/api/orders/journal"]["get"]["parameters"]} == {
        "pair",
        "status",
        "cursor",
        "limit",
    }
    assert "OrderJournalDetail" in str(paths["/api/orders/journal/{client_order_id}"])
    assert "ReconciliationPage" in str(paths["/api/reconciliations"])
