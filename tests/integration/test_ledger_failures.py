"""A ledger that fails writes is an error the engine logs, counts and shows on /health, and
entries stop until writes succeed again; nothing kills the process."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helios_live.ledger import Ledger
from helios_live.ledger.writer import LedgerWriter
from tests.conftest import REPO
from tests.ledger_support import snapshot as ledger_snapshot


def _chattr_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.touch()
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)  # noqa: S603, S607
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)  # noqa: S603, S607
    return done.returncode == 0


def test_an_immutable_sqlite_ledger_stops_entries_and_the_service_lives_on(tmp_path: Path) -> None:
    if not _chattr_works(tmp_path):
        message = "chattr +i does not work here (needs root on ext4 or similar)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs as root on ext4")
        pytest.skip(message)
    home = tmp_path / "helios"
    run = subprocess.run(  # noqa: S603 -- our own script
        [sys.executable, str(Path(__file__).with_name("readonly_ledger_run.py")), str(home)],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-3000:]}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert "not writable" in seen["failing"]["ledger_writes"]
    assert seen["halted"].startswith("ledger writes failing")
    assert seen["failed_writes"] > 0
    assert "ledger write failed" in run.stderr  # logged, not silent
    assert "ledger_writes" not in seen["after"]  # writes succeed again once the files are writable
    assert seen["denied_while_failing"] > 0  # the gate stopped entries the model wanted
    assert seen["stored_after"] > 0  # decisions after the recovery are in the ledger again


def test_a_locked_sqlite_ledger_shows_as_failing_writes_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "helios.db"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    writer = LedgerWriter(ledger, ThreadPoolExecutor(1))
    snapshot = ledger_snapshot(datetime(2023, 11, 14, tzinfo=UTC), reason="PERIODIC")
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        future = writer.submit(None, None, snapshots=[snapshot])
        deadline = time.monotonic() + 30
        while not future.done() and time.monotonic() < deadline:
            _, since = writer.backlog()
            time.sleep(0.05)
        assert future.exception() is not None
        assert since is not None  # while it waited on the lock, the backlog said so
        assert writer.health.failing == 1 and "locked" in writer.health.error
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    writer.submit(None, None, snapshots=[snapshot]).result(timeout=30)
    assert writer.health.failing == 0 and writer.health.failed == 1
    assert writer.backlog() == (0, None)
    writer.executor.shutdown()
