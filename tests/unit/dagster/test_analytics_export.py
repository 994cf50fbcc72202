"""The ledger export dbt reads, the dbt project's preparation on a fresh clone, and the report's
words when nothing is built."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helios_dagster.analytics.ledger_export import LedgerSource, export_ledgers
from helios_dagster.analytics.report import report_lines
from helios_dagster.defs.analytics import dbt
from helios_live.data.analytics import read_analytics
from helios_live.ledger import Ledger, StepRecord
from helios_live.ledger.records import Unit
from tests.ledger_support import T0, snapshot, traded
from tests.live_support import live_settings

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _ledger(path: Path) -> str:
    url = f"sqlite:///{path}"
    ledger = Ledger(url)
    ledger.migrate()
    decided = replace(traded(), steps=(StepRecord("prediction", True, "BUY by m"), StepRecord("signal", False, "HOLD")))
    ledger.write_units([Unit((decided,), (), (snapshot(T0),))])
    ledger.close()
    return url


def test_every_table_is_written_with_its_columns_even_when_empty(tmp_path: Path) -> None:
    url = _ledger(tmp_path / "a.db")
    result = export_ledgers([LedgerSource("live", url, "live", 1000.0)], tmp_path / "lake", now=NOW)
    assert result.problems == [] and result.rows["live"]["predictions"] == 1
    root = tmp_path / "lake" / "ledger"
    empty = pq.read_table(root / "security_events" / "ledger=live" / "data.parquet")
    assert empty.num_rows == 0 and "severity" in empty.schema.names
    steps = pq.read_table(root / "decision_steps" / "ledger=live" / "data.parquet").to_pylist()
    assert [(s["step"], s["approved"], s["position"]) for s in steps] == [("prediction", True, 0), ("signal", False, 1)]
    checks = pq.read_table(root / "engine_events" / "ledger=live" / "data.parquet")
    assert str(checks.schema.field("at").type) == "timestamp[us, tz=UTC]"
    [source] = pq.read_table(root / "sources" / "ledger=live" / "data.parquet").to_pylist()
    assert source["capital"] == 1000.0 and source["exported_at"] == NOW and source["kind"] == "live"


def test_missing_and_foreign_ledgers_are_named_and_a_new_export_replaces_the_old(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    url = _ledger(tmp_path / "a.db")
    export_ledgers([LedgerSource("old", url, "backtest", 1.0)], lake, now=NOW)
    foreign = tmp_path / "other.db"
    sqlite3.connect(foreign).execute("create table t (x integer)").connection.close()
    result = export_ledgers(
        [
            LedgerSource("live", url, "live", 1.0),
            LedgerSource("gone", f"sqlite:///{tmp_path / 'nothing.db'}", "backtest", 1.0),
            LedgerSource("foreign", f"sqlite:///{foreign}", "backtest", 1.0),
        ],
        lake,
        now=NOW,
    )
    assert result.sources == ["live"]
    assert any(p.startswith("gone: no ledger yet") for p in result.problems)
    assert any(p.startswith("foreign:") and "not a Helios ledger" in p for p in result.problems)
    assert sorted(p.name for p in (lake / "ledger" / "predictions").iterdir()) == ["ledger=live"]
    assert not (tmp_path / "nothing.db").exists()  # reading never creates a ledger


def test_a_source_name_must_be_a_path_segment() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        LedgerSource("../etc", "sqlite://", "live", 1.0)


def test_a_fresh_clone_gets_its_manifest_without_a_manual_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "dbt_project"
    shutil.copytree(dbt.PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt, "PROJECT_DIR", copy)
    project = dbt.prepared_project(live_settings(tmp_path / "helios"))
    assert project.manifest_path.exists() and project.manifest_path.is_relative_to(copy)


def test_the_report_says_how_to_build_when_nothing_is_built(tmp_path: Path) -> None:
    lines = list(report_lines(read_analytics(tmp_path), "live"))
    assert len(lines) == 1 and "helios analytics" in lines[0]
