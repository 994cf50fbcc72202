"""`helios surveil --once` against the fake markets on loopback: every check runs and reports,
and its rows are in the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helios_live.ledger import Ledger
from helios_live.venues.hyperliquid.simulator import FakeMarkets
from tests.surveillance_support import VAULT, calm

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_helios_surveil_once_runs_every_check_against_loopback(tmp_path: Path) -> None:
    with FakeMarkets() as markets:
        calm(markets)
        markets.set_price("hyperliquid-oracle", "ETH", 100_000.0 / 30 * 1.02)  # ETH's oracle 2 % off
        markets.set_vault(VAULT, [(1.79e9, 1e8)], [(1.79e9, 0.0)])
        env = {
            **os.environ,
            "HELIOS_HOME": str(tmp_path),
            "HELIOS_LIVE_PAIRS": "BTCZAR",
            "HELIOS_SURVEILLANCE_HYPERLIQUID_URL": f"{markets.url}/hyperliquid",
            "HELIOS_SURVEILLANCE_BINANCE_URL": f"{markets.url}/binance",
            "HELIOS_SURVEILLANCE_COINBASE_URL": f"{markets.url}/coinbase",
            "HELIOS_SURVEILLANCE_VALR_URL": f"{markets.url}/valr",
            "HELIOS_SURVEILLANCE_ASSETS": "BTC,ETH",
            "HELIOS_SURVEILLANCE_VAULT": VAULT,
            "HELIOS_SURVEILLANCE_SUSTAINED_S": "0",
        }
        done = subprocess.run(  # noqa: S603 -- our own CLI
            [sys.executable, "-c", "from helios_dagster.cli import main; main()", "surveil", "--once"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "oracle: hyperliquid/BTC +0.000% (2 refs)" in out
    assert "hyperliquid/ETH +2.000% (2 refs, CRITICAL)" in out and "valr/BTCZAR +0.000% (3 refs)" in out
    assert "liquidations: nothing to report" in out and "vault:" in out
    assert "event: CRITICAL oracle_deviation on hyperliquid/ETH" in out
    assert "vault: equity 100,000,000: first snapshot" in out
    ledger = Ledger(f"sqlite:///{tmp_path / 'helios.db'}")
    events = ledger.security_events().items
    assert [(e["asset"], e["severity"]) for e in events] == [("ETH", "CRITICAL")]
