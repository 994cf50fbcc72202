"""The market-data assets, checks, schedule and backfill policy, run by Dagster in-process."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from helios_core.errors import HeliosError
from helios_dagster.definitions import build_defs
from helios_dagster.defs.market_data.definitions import JOB
from helios_dagster.resources import market_data_from
from helios_dagster.runs import RunFailed, run_market_data
from helios_dagster.schedules import PIPELINE
from helios_live.data.lake import Lake
from helios_live.settings import load_settings
from tests.conftest import sample


def run(pair: str, first: date, last: date, **overrides: object):  # type: ignore[no-untyped-def]
    settings = load_settings()
    instance = dg.DagsterInstance.ephemeral()
    summary = run_market_data(
        settings, pair, first, last, market_data_from(settings, **overrides), instance, verbose=False
    )
    return summary, instance, Lake(settings.lake_root)


def checks_by_name(summary) -> dict:  # type: ignore[no-untyped-def]
    return {c.name: c for c in summary.checks}


def test_definitions_load_with_assets_checks_job_and_schedule(helios_env: Path) -> None:
    defs = build_defs(load_settings())
    graph = defs.resolve_asset_graph()
    analytics = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "analytics"}
    keys = {k.to_user_string() for k in graph.get_all_asset_keys() - analytics}
    assert keys == {
        "raw_candles",
        "candles",
        "features",
        "labels",
        "training_dataset",
        "model_candidate",
        "walk_forward",
        "candidate_backtest",
        "active_model",
        "surveillance_anomaly_model",
        "surveillance_daily",
        "allocation_targets",
        "portfolio_attribution",
    }
    # the analytics group (ledger export, dbt models and their tests) is pinned in test_analytics
    assert {k.path[0] for k in analytics} >= {"ledger", "fct_trades", "mart_go_live"}
    checks = {k.name for k in graph.asset_check_keys if k.asset_key not in analytics}
    assert checks == {
        "candles_expectations",
        "candles_gaps",
        "candles_match_reference",
        "features_expectations",
        "features_lookahead",
        "features_recursive",
        "labels_expectations",
        "dataset_expectations",
        "model_onnx_parity",
        "anomaly_model_onnx_parity",
        "surveillance_batch_agrees",
    }
    assert defs.resolve_job_def(JOB) is not None and defs.resolve_job_def(PIPELINE) is not None
    assert defs.resolve_schedule_def("daily_pipeline").cron_schedule == "15 0 * * *"
    assert defs.resolve_schedule_def("weekly_retrain").cron_schedule == "0 3 * * 0"
    assert defs.resolve_sensor_def("retrain_on_new_data") is not None
    assert defs.resolve_schedule_def("surveillance_retention_daily").cron_schedule == "30 3 * * *"
    assert defs.resolve_job_def("surveillance_retention") is not None
    assert defs.resolve_schedule_def("allocation_daily").cron_schedule == "15 0 * * *"
    assert defs.resolve_sensor_def("allocation_on_risk_event") is not None
    assert defs.resolve_job_def("allocation_job") is not None


def test_a_range_is_one_run_and_the_real_gaps_are_reported(helios_env: Path) -> None:
    summary, instance, lake = run("ADABTC", date(2018, 1, 14), date(2018, 1, 16))
    assert len(instance.get_runs()) == 1  # single-run backfill: 3 pair-days, one run
    gaps = checks_by_name(summary)["candles_gaps"]
    assert gaps.metadata["missing_by_series"] == {"ADABTC 5m": 40, "ADABTC 15m": 12}
    assert checks_by_name(summary)["candles_expectations"].passed
    for day in (date(2018, 1, 14), date(2018, 1, 15), date(2018, 1, 16)):
        assert lake.exists("raw_candles", "ADABTC", "5m", day)
        assert lake.exists("candles", "ADABTC", "15m", day)
        assert not lake.exists("candles", "ADABTC", "1m", day)  # cannot be built from 5m data


def test_rerunning_a_partition_replaces_it(helios_env: Path) -> None:
    day = date(2022, 1, 10)
    _, _, lake = run("BTCPERP", day, day)
    first, _ = lake.read("candles", "BTCPERP", "5m", day)
    run("BTCPERP", day, day)
    again, _ = lake.read("candles", "BTCPERP", "5m", day)
    pd.testing.assert_frame_equal(first, again)
    assert len(again) == 288
    assert len(list(lake.path("candles", "BTCPERP", "5m", day).parent.iterdir())) == 1


def test_last_day_has_no_partial_candle(helios_env: Path) -> None:
    _, _, lake = run("BTCPERP", date(2022, 2, 1), date(2022, 2, 1))
    tail = {tf: lake.read("candles", "BTCPERP", tf, date(2022, 2, 1))[0]["ts"].iloc[-1] for tf in ("1m", "5m", "15m")}
    assert tail == {
        "1m": pd.Timestamp("2022-02-01T05:31:00Z"),
        "5m": pd.Timestamp("2022-02-01T05:25:00Z"),  # 05:30-05:35 would need data past 05:32
        "15m": pd.Timestamp("2022-02-01T05:15:00Z"),
    }


def test_candles_built_from_trades_equal_the_recorded_candles(helios_env: Path) -> None:
    summary, _, _ = run("XRPETH", date(2019, 10, 11), date(2019, 10, 13))
    match = checks_by_name(summary)["candles_match_reference"]
    assert match.passed and match.metadata["candles_compared"] == 2469 and match.metadata["mismatched"] == 0
    gaps = checks_by_name(summary)["candles_gaps"]
    assert not gaps.passed and gaps.severity == "WARN"  # 1,091 minutes without a trade
    assert gaps.metadata["missing_by_series"]["XRPETH 1m"] == 1091


def test_reference_check_fails_when_the_two_records_disagree(helios_env: Path, tmp_path: Path) -> None:
    candles = sample("XRP-ETH_1m_2019-10.parquet")
    candles.loc[100, "close"] = candles.loc[100, "high"]  # still valid OHLC, but not what was traded
    folder = tmp_path / "files"
    folder.mkdir()
    candles.to_parquet(folder / "XRP-ETH_1m.parquet")
    sample("XRP-ETH_trades_2019-10.parquet").to_parquet(folder / "XRP-ETH_trades.parquet")
    summary, _, _ = run("XRPETH", date(2019, 10, 11), date(2019, 10, 11), file_dir=str(folder))
    match = checks_by_name(summary)["candles_match_reference"]
    assert not match.passed and match.metadata["mismatched"] == 1


def test_bad_source_data_fails_the_run_and_writes_nothing(helios_env: Path, tmp_path: Path) -> None:
    bad = sample("ETH-BTC_5m_2018-01.parquet")
    bad.loc[500, "low"] = bad.loc[500, "high"] * 2
    folder = tmp_path / "files"
    folder.mkdir()
    bad.to_parquet(folder / "ETH-BTC_5m.parquet")
    with pytest.raises(RunFailed, match=r"ETH-BTC_5m.parquet: data row 501 .*high < low"):
        run("ETHBTC", date(2018, 1, 11), date(2018, 1, 12), file_dir=str(folder))
    assert list(Lake(load_settings().lake_root).files("raw_candles")) == []


def test_a_day_without_data_is_a_clear_error(helios_env: Path) -> None:
    with pytest.raises(RunFailed, match="no ETHBTC candles on 2018-02-15"):
        run("ETHBTC", date(2018, 2, 15), date(2018, 2, 15))


def test_unknown_pair_is_refused_before_any_run(helios_env: Path) -> None:
    with pytest.raises(HeliosError, match="unknown pair DOGEZAR: not in HELIOS_PAIRS"):
        run("DOGEZAR", date(2018, 1, 1), date(2018, 1, 1))


def test_daily_schedule_asks_for_the_last_two_days_of_every_pair(
    helios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELIOS_PAIRS", "BTCZAR,ETHZAR")
    defs = build_defs(load_settings())
    schedule = defs.resolve_schedule_def("daily_pipeline")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 2, 0, 15, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    ranges = sorted(
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests
    )
    # yesterday, and the day before, whose last labels needed yesterday's candles
    assert ranges == [("2026-02-28|BTCZAR", "2026-03-01|BTCZAR"), ("2026-02-28|ETHZAR", "2026-03-01|ETHZAR")]


def test_duckdb_reads_the_lake_as_the_readme_shows(helios_env: Path) -> None:
    import duckdb

    run("ETHBTC", date(2018, 1, 11), date(2018, 1, 12))
    pattern = str(load_settings().lake_root / "candles" / "*" / "*" / "*.parquet")
    query = "SELECT pair, timeframe, count(*) FROM read_parquet(?, hive_partitioning=true) GROUP BY ALL ORDER BY 2"
    rows = duckdb.execute(query, [pattern]).fetchall()
    assert rows == [("ETHBTC", "15m", 192), ("ETHBTC", "5m", 576)]
