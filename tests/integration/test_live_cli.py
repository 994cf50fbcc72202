"""`helios live serve` as an operator runs it: a process configured by environment variables."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from helios_live.demo import free_port
from helios_live.ledger import Ledger
from tests.live_support import make_bundle, serve

pytestmark = pytest.mark.integration


def test_serve_refuses_to_start_open_to_the_network_without_a_token(tmp_path: Path) -> None:
    process = serve({"HELIOS_HOME": str(tmp_path), "HELIOS_API_HOST": "0.0.0.0"})  # noqa: S104 -- refused

    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 2
    assert "HELIOS_API_TOKEN must be a secret" in stderr


def test_serve_runs_the_engine_logs_json_and_stops_cleanly(tmp_path: Path) -> None:
    make_bundle(tmp_path / "models")
    port = free_port()
    process = serve(
        {
            "HELIOS_HOME": str(tmp_path),
            "HELIOS_API_PORT": str(port),
            "HELIOS_LIVE_PAIRS": "BTCPERP",
            "HELIOS_LIVE_WS_URL": "ws://127.0.0.1:9/ws/trade",  # nothing listens: it keeps retrying
        }
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/autonomous-engine/status", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.2)
        assert status is not None and status["status"] == "RUNNING" and status["pairs"] == ["BTCPERP"]
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any(line["message"].startswith("START") for line in lines)
    ledger = Ledger(f"sqlite:///{tmp_path.resolve() / 'helios.db'}")
    kinds = [e["kind"] for e in ledger.events(limit=100).items]
    ledger.close()
    assert kinds[0] == "STOP" and "START" in kinds
