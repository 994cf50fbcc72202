"""The batch side of surveillance: a day's deviation checks from the ledger into the lake with
the batch twin agreeing with what the monitors recorded, and the retention job's deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from helios_core.surveillance.cascade import CascadeDetector
from helios_core.surveillance.deviation import DeviationConfig, DeviationTracker, Reference
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_core.surveillance.observations import Liquidation
from helios_dagster.definitions import build_defs
from helios_dagster.defs.surveillance.daily import DATASET, twin
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.surveillance.rows import cascade_row, deviation_row, event_row, liquidation_row

DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=13)


def test_the_day_lands_in_the_lake_and_the_twin_agrees_then_retention_deletes_old_rows(tmp_path: Path) -> None:
    settings = HeliosSettings(home=tmp_path)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    tracker = DeviationTracker()
    rows = []
    for minute in range(120):  # a deviation that builds, holds and fades; a gap without reference
        ts = DAY.timestamp() + 60 * minute
        move = 1.5 if 30 <= minute < 50 else (0.6 if 50 <= minute < 60 else 0.0)
        reference = Reference(float("nan") if minute in (40, 41) else 100.0, 2, 0, 0)
        reading = tracker.update("BTC", 100.0 * (1 + move / 100), ts, reference)
        rows.append(deviation_row(reading, "hyperliquid", "oracle_deviation"))
    detector = CascadeDetector()
    for minute in range(0, 60, 3):  # bursts of liquidations, checked every three minutes
        ts = DAY.timestamp() + 60 * minute
        burst = [
            Liquidation("hyperliquid", "BTC", "short" if k == 2 else "long", 90_000.0, 0.2 + 0.01 * k, ts - k, "0xu",
                        f"0x{minute:04d}{k:04d}")
            for k in range(minute % 9)
        ]  # fmt: skip
        rows += [liquidation_row(liq) for liq in detector.add(burst)]
        reading = detector.check("BTC", ts)
        if reading.count:
            rows.append(cascade_row(reading, "hyperliquid"))
    old = DAY - timedelta(days=400)
    ended = SecurityEvent("old", "vault_anomaly", "hyperliquid", "0xv", Severity.HIGH, Severity.HIGH, 60.0, {},
                          old.timestamp(), old.timestamp(), 1, ended=old.timestamp())  # fmt: skip
    ledger.record_surveillance([*rows, event_row(ended)])

    defs = build_defs(settings)
    asset = defs.resolve_assets_def("surveillance_daily")
    result = dg.materialize([asset], partition_key=DAY.date().isoformat(), instance=dg.DagsterInstance.ephemeral())
    assert result.success
    metadata = result.asset_materializations_for_node("surveillance_daily")[0].metadata
    summary = metadata["assets"].value["hyperliquid/BTC"]  # type: ignore[index]
    assert summary["checks"] == 120 and summary["without_reference"] == 2
    assert summary["high_or_worse"] == 28 and summary["disagreements"] == 0
    assert metadata["disagreements"].value == 0
    cascades = metadata["cascades"].value["hyperliquid/BTC"]  # type: ignore[index]
    assert cascades["cascades"] > 0 and cascades["checks"] > cascades["cascades"] and cascades["disagreements"] == 0
    stored, _ = Lake(settings.lake_root).read(DATASET, "hyperliquid-BTC", "1m", DAY.date())
    assert len(stored) == 120
    # the twin can disagree: a check recorded with another severity than its numbers give is found
    frame = pd.DataFrame(ledger.surveillance_between("oracle_deviations", DAY, DAY + timedelta(days=1)))
    assert twin(frame, DeviationConfig())["disagreements"] == 0
    frame.loc[35, "severity"] = "MEDIUM"
    assert twin(frame, DeviationConfig())["disagreements"] == 1

    job = defs.resolve_job_def("surveillance_retention")
    assert job.execute_in_process().success
    assert ledger.security_events(since=None).items == []  # ended 400 days ago: gone
    assert (
        len(ledger.surveillance_between("oracle_deviations", DAY, DAY + timedelta(days=1))) == 120
    )  # 13 days old: kept
    names = {s.name for s in defs.schedules}
    assert "surveillance_retention_daily" in names
