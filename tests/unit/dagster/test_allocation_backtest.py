"""Tier 5 allocation in a backtest: four real 5m pairs (Binance, January 2018) through the kernel
with targets computed at each daily check from what the backtest had seen, and again without;
the report shows both side by side, every target and rebalance is in the backtest's ledger, and
no target was computed from a day that had not ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from helios_dagster.allocation.backtest import backtest_allocator
from helios_live.backtest.backtester import Market
from helios_live.backtest.compare import SHOWN
from helios_live.backtest.run import run_backtest
from helios_live.ledger import Ledger
from tests.conftest import sample
from tests.live_support import live_settings, make_bundle

FILES = {p: f"{p[:3]}-BTC_5m_2018-01.parquet" for p in ("ETHBTC", "LTCBTC", "XMRBTC", "ADABTC")}
START = datetime(2018, 1, 16, tzinfo=UTC)
END = datetime(2018, 1, 19, tzinfo=UTC)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market("5m", {pair: sample(name) for pair, name in FILES.items()})


def test_a_backtest_with_allocation_beside_the_same_run_without_it(tmp_path: Path, market: Market) -> None:
    pairs = tuple(FILES)
    settings = live_settings(
        tmp_path, live_pairs=pairs, live_min_confidence=0.4, live_warmup_days=5, risk_max_hold_s=6 * 3600.0,
        allocation_min_returns=4, allocation_drift=0.02,
    )  # fmt: skip
    version = make_bundle(settings.models_root, lean=0, base="5m")
    result = run_backtest(
        settings, model_version=version, pairs=pairs, start=START, end=END, out_dir=tmp_path / "run",
        market=market, random_runs=3, allocating=backtest_allocator,
    )  # fmt: skip
    section = result.report["allocation"]
    assert set(section["with"]) == set(section["without"]) == set(SHOWN)
    assert section["targets"] == 3  # the daily checks at 01:00 UTC on the 16th, the 17th and the 18th
    assert section["summary"].startswith("The allocation") or section["summary"].startswith("Sharpe is undefined")
    html = result.html.read_text()
    assert "Tier 5: does the allocation add value?" in html and "Without it" in html
    assert json.loads(result.json.read_text())["allocation"]["targets"] == section["targets"]
    ledger = Ledger(f"sqlite:///{result.ledger}")
    targets = ledger.allocation_targets(limit=100).items
    for row in targets:
        assert row["source"] == "backtest"
        assert row["computed_at"].hour == 1 and row["computed_at"].minute == 0  # the check's time on the clock
        last_day = pd.Timestamp(row["inputs"]["window"]["end"])
        assert last_day + pd.Timedelta(days=1) <= row["computed_at"]  # only days that had ended
        assert abs(sum(row["weights"].values()) - 1.0) < 1e-6
        assert set(row["weights"]) == set(pairs)
    steps = [s for p in ledger.predictions(limit=1000).items for s in p["steps"] if s["step"] == "allocation"]
    assert steps, "entries met the allocation step once targets existed"
    ledger.close()
    without = Ledger(f"sqlite:///{tmp_path / 'run' / 'allocation' / 'without.sqlite'}")
    assert without.allocation_targets().items == []
    steps = [s for p in without.predictions(limit=1000).items for s in p["steps"] if s["step"] == "allocation"]
    assert steps == []
    without.close()
