"""`helios live serve` as an operator runs it: a process configured by environment variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from helios_live.api.routers.events import SUBPROTOCOL
from helios_live.demo import free_port
from helios_live.ledger import Ledger
from tests.conftest import REPO
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


TOKEN = "Hx5nR8vQ2mK7wZ4tB9pL-live"  # noqa: S105 -- test secrets (the token strong enough to be accepted)
VALR_KEY = "vk-3f9a1c7e5b2d8f4a6c0e7b1d"
VALR_SECRET = "vs-9d8c7b6a5f4e3d2c1b0a8e7f6d5c4b3a"  # noqa: S105
CLOSED = "127.0.0.1:9"  # nothing listens: the service reaches nothing off this machine


def _quiet_service(home: Path, port: int) -> dict[str, str]:
    return {
        "HELIOS_HOME": str(home),
        "HELIOS_API_PORT": str(port),
        "HELIOS_API_TOKEN": TOKEN,
        "HELIOS_VALR_API_KEY": VALR_KEY,
        "HELIOS_VALR_API_SECRET": VALR_SECRET,
        "HELIOS_VALR_BASE_URL": f"http://{CLOSED}",
        "HELIOS_LIVE_WS_URL": f"ws://{CLOSED}/ws/trade",
        "HELIOS_LIVE_PAIRS": "BTCPERP",
        "HELIOS_LIVE_AUTOSTART": "false",
    }


def _until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.get("/api/mode", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the service did not come up")


def test_no_secret_reaches_the_logs_whatever_the_clients_send(tmp_path: Path) -> None:
    port = free_port()
    events = f"ws://127.0.0.1:{port}/api/events"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    process = serve(_quiet_service(tmp_path, port))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            _until_up(client)
            answers = [
                client.post("/api/autonomous-engine/auto-trading/enable", headers=auth),
                client.post("/api/autonomous-engine/auto-trading/enable", headers={"Authorization": "Bearer guess"}),
                client.post("/api/autonomous-engine/auto-trading/disable", params={"token": TOKEN}),
                client.get("/api/mode", params={"token": TOKEN}),
                client.get("/api/portfolio", params={"api_key": VALR_KEY, "secret": VALR_SECRET}),
            ]
        with connect(events, additional_headers=auth, proxy=None) as ws:
            assert ws.subprotocol is None
        with connect(events, subprotocols=[SUBPROTOCOL, TOKEN], proxy=None) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == SUBPROTOCOL
        for url, offered in ((f"{events}?token={TOKEN}", None), (events, [SUBPROTOCOL, "guess"])):
            with pytest.raises(InvalidStatus), connect(url, subprotocols=offered, proxy=None):  # type: ignore[arg-type]
                pass
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)

    # A token in the query string is never read: the reads that carry one there are refused too.
    assert [a.status_code for a in answers] == [200, 401, 401, 401, 401]
    assert process.returncode == 0
    output = (stdout + stderr).splitlines()
    assert any("/api/events?token=***" in line for line in output)  # the request lines were logged
    for secret in (TOKEN, VALR_KEY, VALR_SECRET):
        assert [line for line in output if secret in line] == []


def test_a_fatal_signal_leaves_a_traceback_on_stderr(tmp_path: Path) -> None:
    port = free_port()
    process = serve(_quiet_service(tmp_path, port))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            _until_up(client)
    finally:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == -signal.SIGABRT
    assert "Fatal Python error: Aborted" in stderr and 'File "' in stderr


@pytest.mark.parametrize(
    ("command", "code"),
    [(["-m", "helios_live.cli", "serve"], 2), (["-m", "helios_dagster.cli", "data", "status"], 1)],
)
def test_a_bad_setting_is_one_error_line_without_a_traceback(tmp_path: Path, command: list[str], code: int) -> None:
    env = os.environ | {"HELIOS_HOME": str(tmp_path), "HELIOS_TRADING_CAPITAL": "inf", "HELIOS_LIVE_PAIRS": "NOPE"}
    done = subprocess.run(  # noqa: S603 -- our own CLIs with fixed arguments
        [sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == code and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: invalid configuration: ")
    assert "HELIOS_TRADING_CAPITAL: Input should be a finite number" in line and "HELIOS_LIVE_PAIRS: 'NOPE'" in line
