"""`portfolio_attribution`: a day's attribution from the ledger and the lake into the lake
dataset, by segment and pair, checked by hand; a re-run rewrites the day; a day without prices
is written as what it lacked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from helios_core.trading.account import PortfolioSnapshot
from helios_dagster.defs.allocation.attribution import (
    ASSET,
    ATTRIBUTION_ASSETS,
    DATASET,
    PORTFOLIO,
    TIMEFRAME,
)
from helios_dagster.resources import LakeResource
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.settings import load_settings
from tests.ledger_support import opening

DAY = date(2026, 6, 10)
MIDNIGHT = datetime(2026, 6, 10, tzinfo=UTC)
LAST_CLOSES = {  # the last 1m close of each day: the price at the next midnight
    "BTCZAR": {DAY - timedelta(days=1): 1_000_000.0, DAY: 1_030_000.0},
    "ETHZAR": {DAY - timedelta(days=1): 25_000.0, DAY: 25_500.0},
}
TOL = 1e-12


def candles(day: date, close: float) -> pd.DataFrame:
    ts = pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(hours=23, minutes=59)
    prices = {c: [close] for c in ("open", "high", "low", "close")}
    counts = pd.array([1], dtype="Int64")
    return pd.DataFrame({"ts": [ts], **prices, "volume": [1.0], "trade_count": counts, "buy_volume": [0.5]})


@pytest.fixture
def home(helios_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELIOS_LIVE_PAIRS", "BTCZAR,ETHZAR")
    monkeypatch.setenv("HELIOS_RISK_SECTORS", '{"BTCZAR": "majors", "ETHZAR": "alts"}')
    settings = load_settings()
    lake = Lake(settings.lake_root)
    for pair, closes in LAST_CLOSES.items():
        for day, close in closes.items():
            lake.write("candles", pair, "1m", day, candles(day, close), {})
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    # a long of 4 ETH bought the day before at 25,000, still open
    ledger.write(opens=[(None, opening("eth", "ETHZAR", MIDNIGHT - timedelta(hours=12), 25_000.0))])
    equity = 100_000.0
    snapshot = PortfolioSnapshot(
        MIDNIGHT - timedelta(minutes=30), equity, 0.0, 0.0, equity, equity, 0.0, equity, 0.0, 1, "PERIODIC"
    )
    ledger.write(snapshots=[snapshot])
    ledger.close()
    return helios_env


def materialize(home: Path, day: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ATTRIBUTION_ASSETS,
        partition_key=day.isoformat(),
        resources={"lake": LakeResource(root=str(home / "lake"))},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_the_day_is_attributed_by_segment_and_pair_into_the_lake(home: Path) -> None:
    """Equity 100,000 at midnight. ETH (alts): 4 x 25,000 = w0 1.0, r = 25,500 / 25,000 - 1 =
    0.02, c = 4 x 500 / 100,000 = 0.02 (yesterday's entry fee is yesterday's): timing 0.
    BTC (majors): r = 0.03, not held. Equal benchmark: R_b = (0.03 + 0.02) / 2 = 0.025.
    alts: (1 - 0.5)(0.02 - 0.025) = -0.0025; majors: (0 - 0.5)(0.03 - 0.025) = -0.0025; cash
    weighs 0. Total -0.005 = 0.02 - 0.025, all allocation."""
    result = materialize(home, DAY)

    assert result.success
    metadata = result.asset_materializations_for_node(ASSET)[0].metadata
    assert metadata["attributed"].value is True
    assert metadata["portfolio_return"].value == pytest.approx(0.02, abs=TOL)
    assert metadata["benchmark_return"].value == pytest.approx(0.025, abs=TOL)
    assert metadata["allocation"].value == pytest.approx(-0.005, abs=TOL)
    assert metadata["timing"].value == pytest.approx(0.0, abs=TOL)
    assert metadata["missing"].value == []
    frame, _ = Lake(home / "lake").read(DATASET, PORTFOLIO, TIMEFRAME, DAY)
    by = frame.set_index(["level", "name"])
    assert list(frame["level"]) == ["total", "segment", "segment", "segment", "pair", "pair"]
    assert by.loc[("segment", "alts"), "allocation"] == pytest.approx(-0.0025, abs=TOL)
    assert by.loc[("segment", "majors"), "allocation"] == pytest.approx(-0.0025, abs=TOL)
    assert by.loc[("segment", "cash"), "weight"] == pytest.approx(0.0, abs=TOL)
    assert by.loc[("pair", "ETHZAR"), "weight"] == pytest.approx(1.0, abs=TOL)
    assert by.loc[("pair", "ETHZAR"), "contribution"] == pytest.approx(0.02, abs=TOL)
    assert by.loc[("pair", "BTCZAR"), "benchmark_return"] == pytest.approx(0.03, abs=TOL)
    assert by.loc[("total", "portfolio"), "total"] == pytest.approx(-0.005, abs=TOL)

    assert materialize(home, DAY).success  # a re-run rewrites the day, it does not add to it
    again, _ = Lake(home / "lake").read(DATASET, PORTFOLIO, TIMEFRAME, DAY)
    pd.testing.assert_frame_equal(again, frame)


def test_a_day_without_prices_is_written_as_what_it_lacked(home: Path) -> None:
    later = DAY + timedelta(days=1)  # the lake has the day before it, not the day itself

    result = materialize(home, later)

    assert result.success
    metadata = result.asset_materializations_for_node(ASSET)[0].metadata
    assert metadata["attributed"].value is False
    frame, _ = Lake(home / "lake").read(DATASET, PORTFOLIO, TIMEFRAME, later)
    assert set(frame["level"]) == {"missing"}
    notes = sorted(zip(frame["name"], frame["note"], strict=True))
    assert notes == [
        ("", "no equal benchmark (no pair priced, or no quote volume before the day): day left out"),
        ("BTCZAR", "no 1m close at the day's start or end: out of the benchmark"),
        ("ETHZAR", "no 1m close at the day's end for its holding: day left out"),
        ("ETHZAR", "no 1m close at the day's start or end: out of the benchmark"),
    ]
