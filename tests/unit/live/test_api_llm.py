"""Tier 4's audit over REST: GET /api/llm/decisions (filters, cursor pagination),
GET /api/llm/decisions/{id} with its context, and each position's link to its decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helios_live.api.app import create_app
from helios_live.ledger import Ledger
from tests.ledger_support import traded
from tests.live_support import live_settings, make_bundle
from tests.unit.live.test_ledger_llm import answer_json, decided

TOKEN = "Kq3vZ9pW7xR2mT8yL4nB-llm"  # noqa: S105 -- a test secret
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


def seed(client: TestClient) -> list[int | None]:
    return ledger_of(client).add_predictions(
        [
            decided(0, pair=PAIR, clamps=("leverage 3x above the proposal's 2x: kept 2x",), verdict="MODIFY"),
            decided(1, pair=PAIR, verdict="REJECT", answer=answer_json("EXTREME volatility", decision="REJECT")),
            decided(2, pair=PAIR, source="failsafe", verdict="REJECT", failure="timeout: no answer within 8 s"),
            decided(3, pair=PAIR, source="rules", approver="rule_based"),
            traded(pair=PAIR, hour=4),  # never reached Tier 4
        ]
    )


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_decisions_page_filters_and_walks(client: TestClient) -> None:
    assert get(client, "/api/llm/decisions") == {"items": [], "next_cursor": None}
    seed(client)

    every = get(client, "/api/llm/decisions")["items"]
    first = get(client, "/api/llm/decisions", limit=3)
    rest = get(client, "/api/llm/decisions", limit=3, cursor=first["next_cursor"])

    assert len(every) == 4 and [i["id"] for i in every] == sorted((i["id"] for i in every), reverse=True)
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in every]
    assert rest["next_cursor"] is None

    def hours(**params: Any) -> list[int]:
        items = get(client, "/api/llm/decisions", **params)["items"]
        return [int(i["candle_ts"][11:13]) for i in items]

    assert hours(verdict="REJECT") == [2, 1]
    assert hours(source="failsafe") == [2] and hours(failed="true") == [2]
    assert hours(failed="false") == [3, 1, 0]
    assert hours(approver="rule_based") == [3]
    assert hours(pair="btc-perp", source="llm") == [1, 0]  # the pair by any of its spellings

    oldest = every[-1]
    assert oldest["clamps"] == ["leverage 3x above the proposal's 2x: kept 2x"] and oldest["verdict"] == "MODIFY"
    assert oldest["answer"]["reasons"] == ["trend intact", "depth fine"] and "context" not in oldest
    assert oldest["candle_ts"] == "2026-01-01T00:00:00Z" and oldest["request_id"] == "req_0"
    assert every[1]["answer"] is None and every[1]["failure"] == "timeout: no answer within 8 s"


def test_one_decision_comes_with_its_context(client: TestClient) -> None:
    ids = seed(client)
    listed = {i["prediction_id"]: i for i in get(client, "/api/llm/decisions")["items"]}
    item = listed[ids[0]]

    detail = get(client, f"/api/llm/decisions/{item['id']}")

    assert detail["context"] == {"market": {"price": 100.0}, "pair": PAIR}
    assert {k: v for k, v in detail.items() if k != "context"} == item
    missing = client.get(f"/api/llm/decisions/{item['id'] + 1000}", headers=AUTH)
    assert missing.status_code == 404 and "no LLM decision" in missing.json()["detail"]


def test_reads_need_a_principal_as_the_other_ledger_pages_do(client: TestClient) -> None:
    """Like /api/predictions and /api/positions: with a token configured, reads need one too."""
    seed(client)

    assert client.get("/api/llm/decisions", headers=AUTH).status_code == 200
    assert client.get("/api/llm/decisions").status_code == 401
    assert client.get("/api/predictions").status_code == 401


def test_invalid_queries_get_4xx(client: TestClient) -> None:
    assert client.get("/api/llm/decisions", params={"pair": "DOGEZAR"}, headers=AUTH).status_code == 404
    assert client.get("/api/llm/decisions", params={"verdict": "MAYBE"}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"source": "oracle"}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"failed": "perhaps"}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"limit": 0}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"limit": 1001}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"cursor": "bogus"}, headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions/0", headers=AUTH).status_code == 422
    assert client.get(f"/api/llm/decisions/{2**63}", headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions/abc", headers=AUTH).status_code == 422
    assert client.get("/api/llm/decisions", params={"approver": "x\x00"}, headers=AUTH).status_code == 400


def test_each_position_links_to_its_decision_and_explanation(client: TestClient) -> None:
    ids = seed(client)
    decisions = {i["prediction_id"]: i for i in get(client, "/api/llm/decisions")["items"]}

    positions = {p["prediction_id"]: p for p in get(client, "/api/positions")["items"]}
    one = get(client, f"/api/positions/{positions[ids[1]]['id']}")

    assert len(positions) == 5
    modified = positions[ids[0]]
    assert modified["llm_decision_id"] == decisions[ids[0]]["id"]
    assert (modified["llm_verdict"], modified["explanation"]) == ("MODIFY", "trend intact; depth fine")
    assert (one["llm_verdict"], one["explanation"]) == ("REJECT", "EXTREME volatility")
    assert one["llm_decision_id"] == decisions[ids[1]]["id"]
    assert positions[ids[2]]["explanation"] == "timeout: no answer within 8 s"
    plain = positions[ids[4]]
    assert (plain["llm_decision_id"], plain["llm_verdict"], plain["explanation"]) == (None, None, None)
    # the link resolves
    linked = get(client, f"/api/llm/decisions/{positions[ids[3]]['llm_decision_id']}")
    assert linked["prediction_id"] == ids[3] and linked["approver"] == "rule_based"


def test_openapi_documents_the_llm_paths(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=AUTH).json()
    paths = schema["paths"]

    assert {"/api/llm/decisions", "/api/llm/decisions/{decision_id}"} <= set(paths)
    page = paths["/api/llm/decisions"]["get"]
    assert {p["name"] for p in page["parameters"]} == {
        "pair",
        "verdict",
        "source",
        "approver",
        "failed",
        "cursor",
        "limit",
    }
    assert "LlmDecisionDetail" in json.dumps(paths["/api/llm/decisions/{decision_id}"])
