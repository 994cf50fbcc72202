"""The production dagster.yaml: a Dagster instance on PostgreSQL runs and records Helios assets."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from helios_dagster.resources import market_data_from
from helios_dagster.runs import run_market_data
from helios_live.settings import load_settings
from tests.conftest import REPO


@pytest.mark.integration
def test_runs_are_stored_in_postgres(
    helios_env: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = tmp_path / "dagster-pg"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    settings = load_settings()
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        summary = run_market_data(
            settings,
            "ETHBTC",
            date(2018, 1, 12),
            date(2018, 1, 12),
            market_data_from(settings),
            instance,
            verbose=False,
        )
        run = instance.get_run_by_id(summary.run_id)
        assert run is not None and run.is_success
        record = instance.get_latest_materialization_event(dg.AssetKey("candles"))
        assert record is not None and record.run_id == summary.run_id
