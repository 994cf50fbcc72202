"""Schemathesis against the REST API's own OpenAPI schema, in process (ASGI, no socket): whatever
a client sends, valid or not, the answer is never a 5xx, and its status is one the schema
documents for that operation (401, 403 and 429 included). The engine is not started by the
service; a generated POST /start may start it, and then its stream and backfills point at a
closed loopback port, so nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, status_code_conformance
from schemathesis.python import asgi

from helios_live.api.app import create_app
from tests.ledger_support import temporary_database
from tests.live_support import live_settings, make_bundle

pytestmark = pytest.mark.integration

TOKEN = "Zr8kQ2wM5nV7xB4pL9tC-fuzz"  # noqa: S105 -- a test secret
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1:8000"  # a development service answers only to a loopback Host
CLOSED = "127.0.0.1:9"  # nothing listens there
# Few examples per operation, always the same ones: a regression test, not an open-ended search.
FUZZ = settings(
    max_examples=25, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


def _schema(home: Path, **overrides: Any) -> Iterator[schemathesis.BaseSchema]:
    # Rate limits out of the way: the fuzzer is one client sending hundreds of requests a minute.
    service = live_settings(
        home,
        live_ws_url=f"ws://{CLOSED}/ws/trade",
        valr_base_url=f"http://{CLOSED}",
        api_rate_per_min=1_000_000,
        api_login_rate_per_min=10_000,
        **overrides,
    )
    make_bundle(service.models_root)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service), headers={"Host": "127.0.0.1"})
    yield schema
    asgi.shutdown_lifespans()  # the lifespan started with the schema's download: stop engine, close ledger


@pytest.fixture(scope="module")
def open_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema(tmp_path_factory.mktemp("open"))


@pytest.fixture(scope="module")
def token_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema(tmp_path_factory.mktemp("token"), api_token=TOKEN)


@pytest.fixture(scope="module")
def postgres_schema(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[schemathesis.BaseSchema]:
    with temporary_database(postgres_url, "helios_fuzz") as url:
        yield from _schema(tmp_path_factory.mktemp("postgres"), api_token=TOKEN, database_url=url)


def _never_5xx(schema: schemathesis.BaseSchema, **call: Any) -> None:
    """Each operation on its own, valid and invalid requests both; every failure reported at once.
    (Schemathesis' own pytest integration, `from_fixture`, needs a pytest internal that 9.x lacks.)"""
    failures = []
    # The health routes answer 503 on purpose while the engine is stopped: probes read it so.
    for operation in (result.ok() for result in schema.exclude(tag="health").get_all_operations()):
        cases = st.one_of(operation.as_strategy(generation_mode=mode) for mode in schemathesis.GenerationMode)

        @FUZZ
        @given(case=cases)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance], **call)

        try:
            run()
        # Schemathesis reports several failures of one operation as a BaseExceptionGroup.
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 -- a failed check, reported with its request
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_a_development_service_never_answers_5xx(open_schema: schemathesis.BaseSchema) -> None:
    _never_5xx(open_schema, base_url=LOCAL)


def test_an_authenticated_caller_never_gets_a_5xx(token_schema: schemathesis.BaseSchema) -> None:
    _never_5xx(token_schema, headers=AUTH)


def test_an_unauthenticated_caller_gets_documented_refusals(token_schema: schemathesis.BaseSchema) -> None:
    """No credentials against a service with a token: 401 everywhere under /api, each documented."""
    _never_5xx(token_schema)


def test_text_bodies_never_get_a_5xx_on_postgresql(postgres_schema: schemathesis.BaseSchema) -> None:
    """The bodies' text fields above all: PostgreSQL refuses a NUL in text, which SQLite stores."""
    _never_5xx(postgres_schema.include(method="POST"), headers=AUTH)


def test_a_nul_in_text_is_refused_before_postgresql_sees_it(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL cannot store a NUL in text (SQLite can): the request is refused instead, a 4xx."""
    with temporary_database(postgres_url, "helios_nul") as url:
        service = live_settings(tmp_path, api_token=TOKEN, database_url=url, live_ws_url=f"ws://{CLOSED}/ws/trade")
        make_bundle(service.models_root)
        with TestClient(create_app(service)) as client:
            stop = client.post("/api/autonomous-engine/emergency-stop", headers=AUTH, json={"reason": "drill\x00"})
            mode = client.post("/api/mode", headers=AUTH, json={"mode": "PAPER", "reason": "\x00"})
            kind = client.get("/api/engine-events", params={"kind": "START\x00"})
            key = client.get("/api/orders", params={"position_key": "\x00"})
            events = client.get("/api/engine-events", headers=AUTH).json()["items"]

    assert (stop.status_code, mode.status_code, kind.status_code, key.status_code) == (422, 422, 400, 400)
    assert stop.json()["detail"][0]["loc"] == ["body", "reason"]
    assert [e["kind"] for e in events] == []  # nothing of them reached the ledger
