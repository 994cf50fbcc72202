"""The analytics job through Dagster: a real backtest's ledger and the sample's lake exported and
built by dbt, the marts checked against the ledger itself, a failing dbt test that names its
model and rows, and an empty home that builds empty marts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from helios_dagster.definitions import build_defs
from helios_dagster.defs.analytics.dbt import warehouse_path
from helios_dagster.resources import market_data_from
from helios_dagster.runs import RunFailed, RunSummary, run_analytics, run_market_data
from helios_dagster.schedules import PIPELINE
from helios_live.backtest.backtester import Market
from helios_live.backtest.run import run_backtest
from helios_live.data.analytics import read_analytics
from helios_live.settings import HeliosSettings
from tests.conftest import SAMPLE, sample
from tests.live_support import BTC, live_settings, make_bundle
from tests.unit.live.test_backtester import END, START, _gapped

pytestmark = pytest.mark.integration
LEDGER = "backtest.run"


@dataclass
class Built:
    settings: HeliosSettings
    instance: dg.DagsterInstance
    summary: RunSummary
    ledger: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    home = tmp_path_factory.mktemp("analytics") / "helios"
    settings = live_settings(
        home, live_min_confidence=0.4, live_warmup_days=1, risk_max_hold_s=1800.0, source="file", file_dir=SAMPLE
    )
    market = Market("1m", {"BTCPERP": _gapped(sample(BTC).head(1440 * 5))})
    version = make_bundle(settings.models_root, lean=0)
    out = home / "backtests" / "run"
    result = run_backtest(
        settings, model_version=version, pairs=("BTCPERP",), start=START, end=END, out_dir=out, market=market,
        random_runs=2,
    )  # fmt: skip
    assert result.report["metrics"]["overall"]["trades"] > 0, "the backtest must trade for the marts to mean anything"
    instance = dg.DagsterInstance.ephemeral()
    resource = market_data_from(settings)
    run_market_data(settings, "BTCPERP", date(2022, 1, 3), date(2022, 1, 4), resource, instance, False, PIPELINE)
    summary = run_analytics(settings, instance, verbose=False)
    yield Built(settings, instance, summary, out / "ledger.sqlite")


def _mart(built: Built, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(warehouse_path(built.settings)), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def _ledger(built: Built, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(built.ledger) as connection:
        return connection.execute(sql).fetchall()


def test_the_marts_agree_with_the_ledger(built: Built) -> None:
    [(closed,)] = _ledger(built, "select count(*) from positions where status = 'CLOSED'")
    [(trades,)] = _mart(built, f"select count(*) from fct_trades where ledger = '{LEDGER}'")
    assert closed > 0 and trades == closed
    [(decisions,)] = _ledger(built, "select count(*) from predictions")
    [(funnel,)] = _mart(built, f"select sum(decisions) from mart_decision_funnel where ledger = '{LEDGER}'")
    assert funnel == decisions
    # the P&L identity, from the ledger itself: capital + realised P&L (net of fees) = last equity
    [(equity, still_open)] = _ledger(
        built, "select equity, open_positions from portfolio_snapshots order by at desc, id desc limit 1"
    )
    [(realised,)] = _ledger(built, "select sum(realised_pnl) from positions where status = 'CLOSED'")
    assert still_open == 0
    assert equity == pytest.approx(built.settings.trading.capital + realised, abs=1e-6)
    [(gross, fees, last_equity)] = _mart(
        built,
        f"select sum(gross_pnl), sum(fees), (select equity from mart_daily_pnl where ledger = '{LEDGER}' and"
        f" pair = 'TOTAL' order by day desc limit 1) from fct_trades where ledger = '{LEDGER}'",
    )
    assert last_equity == pytest.approx(equity, abs=1e-6)
    assert built.settings.trading.capital + gross - fees == pytest.approx(equity, abs=0.01)


def test_every_dbt_test_ran_as_a_check_and_passed(built: Built) -> None:
    names = {c.name for c in built.summary.checks}
    assert {"assert_fills_reconcile", "assert_pnl_identity", "assert_funnel_adds_up", "assert_candle_high_low"} <= names
    assert len(names) > 30 and all(c.passed for c in built.summary.checks)


def test_the_go_live_table_and_the_published_figures(built: Built) -> None:
    rows = _mart(
        built, f"select criterion, threshold, passed from mart_go_live where ledger = '{LEDGER}' order by position"
    )
    assert [r[0] for r in rows] == ["accuracy", "win_rate", "sharpe", "max_drawdown", "go_live"]
    assert [r[1] for r in rows[:4]] == [0.55, 0.5, 1.0, 0.1]
    assert rows[4][2] == all(r[2] for r in rows[:4])
    analytics = read_analytics(built.settings.home)
    assert analytics.built_at is not None and LEDGER in analytics.ledgers
    periods = {r["period"]: r for r in analytics.rows("mart_performance", LEDGER)}
    assert set(periods) == {"7d", "30d", "all"}
    [(trades,)] = _mart(built, f"select count(*) from fct_trades where ledger = '{LEDGER}'")
    assert periods["all"]["trades"] == trades
    [(covered,)] = _mart(
        built, "select sum(present) from mart_data_coverage where pair = 'BTCPERP' and timeframe = '1m'"
    )
    assert covered == 2 * 1440


def test_the_dbt_sources_hang_under_the_assets_that_write_them(built: Built) -> None:
    graph = build_defs(built.settings).resolve_asset_graph()
    assert dg.AssetKey("candles") in graph.get(dg.AssetKey("stg_candles")).parent_keys
    assert dg.AssetKey(["ledger", "fills"]) in graph.get(dg.AssetKey("stg_fills")).parent_keys
    upstream = graph.get(dg.AssetKey("candles")).parent_keys
    assert dg.AssetKey("raw_candles") in upstream  # one graph from the raw candles to the marts
    assert any(k.name == "assert_pnl_identity" for k in graph.get(dg.AssetKey("fct_trades")).check_keys)


def test_a_failing_dbt_test_names_its_model_and_rows_and_blocks_what_is_below(built: Built) -> None:
    broken = built.ledger.with_name("broken.sqlite")
    broken.write_bytes(built.ledger.read_bytes())
    with sqlite3.connect(broken) as connection:
        connection.execute("update fills set price = price * 1.5 where id = (select min(id) from fills)")
    before = read_analytics(built.settings.home).built_at
    with pytest.raises(RunFailed) as failed:
        run_analytics(built.settings, built.instance, verbose=False, ledgers={"broken": f"sqlite:///{broken}"})
    message = str(failed.value)
    assert "assert_fills_reconcile" in message and "fct_trades" in message and "broken:" in message
    # below fct_trades nothing was rebuilt and nothing was published from the broken build
    [(ledgers,)] = _mart(built, "select count(distinct ledger) from mart_daily_pnl where ledger = 'broken'")
    assert ledgers == 0
    assert read_analytics(built.settings.home).built_at == before
    run_analytics(built.settings, built.instance, verbose=False)  # the good ledgers again, for the other tests


def test_an_empty_home_builds_empty_marts_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = live_settings(tmp_path / "helios")
    summary = run_analytics(settings, dg.DagsterInstance.ephemeral(), verbose=False)
    assert all(c.passed for c in summary.checks)
    analytics = read_analytics(settings.home)
    assert analytics.detail is None and analytics.ledgers == []
    assert analytics.rows("mart_performance") == [] and analytics.rows("mart_go_live") == []
