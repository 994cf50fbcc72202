"""`allocation_targets` on real candles: the lake's 5m candles of four BTC pairs and a few of the
model's predictions in, the targets in the ledger and the asset's metadata out; and the sensor
that recomputes them when a serious security event starts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from helios_core.surveillance.events import SecurityEvent, Severity
from helios_dagster.defs.allocation import build
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings, LiveSettings
from helios_live.surveillance.rows import event_row
from tests.conftest import shared_data
from tests.ledger_support import record

PAIRS = {"ADABTC": "ADA-BTC", "ETHBTC": "ETH-BTC", "LTCBTC": "LTC-BTC", "XMRBTC": "XMR-BTC"}
AS_OF = datetime(2018, 1, 30, 0, 30, tzinfo=UTC)  # the candles run from the 10th to the 30th, 04:50


def _home(tmp_path: Path) -> tuple[HeliosSettings, Ledger]:
    live = LiveSettings(pairs=tuple(PAIRS))
    settings = HeliosSettings(home=tmp_path, pairs=(*PAIRS, "BTCPERP"), timeframes=("1m", "5m"), live=live)
    lake = Lake(settings.lake_root)
    for pair, name in PAIRS.items():
        frame = pd.read_parquet(shared_data(f"candles/{name}_5m_2018-01.parquet"))
        for day, part in frame.groupby(frame["ts"].dt.date):
            lake.write("candles", pair, "5m", day, part.reset_index(drop=True), {})
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    return settings, ledger


def _materialise(defs: dg.Definitions, as_of: datetime) -> Mapping[str, dg.MetadataValue]:
    config = {"ops": {"allocation_targets": {"config": {"as_of": as_of.isoformat()}}}}
    asset = defs.resolve_assets_def("allocation_targets")
    result = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), run_config=config)
    assert result.success
    return result.asset_materializations_for_node("allocation_targets")[0].metadata


def test_the_targets_land_in_the_ledger_with_what_they_came_from(tmp_path: Path) -> None:
    settings, ledger = _home(tmp_path)
    predictions = []
    for k in range(6):  # the model's hours before as_of, on ETHBTC; one after it, never read
        candle = AS_OF - timedelta(hours=6 - k)
        predictions.append(replace(record("ETHBTC"), candle_ts=candle, decided_at=candle + timedelta(minutes=5),
                                   outcome_due=candle + timedelta(hours=1)))  # fmt: skip
    late = AS_OF + timedelta(minutes=5)
    predictions.append(replace(record("LTCBTC"), candle_ts=late, decided_at=late, outcome_due=late))
    ledger.add_predictions(predictions)
    defs = build(settings)

    metadata = _materialise(defs, AS_OF)

    stored = ledger.latest_targets()
    assert stored is not None and stored.as_of == AS_OF
    assert dict(stored.weights) == metadata["weights"].value
    assert stored.method == metadata["method"].value == "black_litterman/max_sharpe" and stored.fallback is None
    assert abs(sum(stored.weights.values()) - 1.0) < 1e-6 and max(stored.weights.values()) <= 0.4 + 1e-9
    inputs = metadata["inputs"].value
    assert isinstance(inputs, dict) and inputs == json.loads(json.dumps(dict(stored.inputs), allow_nan=False))
    assert inputs["pairs"] == sorted(PAIRS) and inputs["cov"]["method"] == "ledoit_wolf"
    assert inputs["returns"] == {"count": 19, "first": "2018-01-11T00:00:00+00:00", "last": "2018-01-29T00:00:00+00:00"}
    assert inputs["views_used"].keys() == {"ETHBTC"} and inputs["views_used"]["ETHBTC"]["predictions"] == 6
    assert inputs["prior_source"] == "volume" and inputs["previous"] is None

    again = _materialise(defs, AS_OF + timedelta(minutes=1))["inputs"].value
    assert isinstance(again, dict) and again["previous"]["weights"] == metadata["weights"].value
    assert again["turnover"] is not None
    assert len(ledger.allocation_targets().items) == 2

    schedule = defs.resolve_schedule_def("allocation_daily")
    assert schedule.cron_schedule == "15 0 * * *" and schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_targets_fall_back_and_say_so_when_the_window_is_too_short(tmp_path: Path) -> None:
    settings, ledger = _home(tmp_path)
    metadata = _materialise(build(settings), datetime(2018, 1, 15, tzinfo=UTC))  # four returns
    assert metadata["method"].value == "fallback/volume_prior"
    assert "too few returns: 4" in str(metadata["fallback"].value)
    stored = ledger.latest_targets()
    assert stored is not None and stored.fallback == metadata["fallback"].value


def _event(uid: str, severity: Severity, at: datetime, ended: bool = False) -> SecurityEvent:
    ts = at.timestamp()
    return SecurityEvent(uid, "oracle_deviation", "hyperliquid", "BTC", severity, severity, 50.0, {}, ts, ts, 1,
                         ended=ts + 60 if ended else None)  # fmt: skip


def test_the_sensor_asks_for_a_run_on_a_new_serious_event_only(tmp_path: Path) -> None:
    settings = HeliosSettings(home=tmp_path)
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    defs = build(settings)
    sensor = defs.resolve_sensor_def("allocation_on_risk_event")
    assert sensor.job_name == "allocation_job" and sensor.default_status == dg.DefaultSensorStatus.STOPPED
    now = datetime.now(UTC)
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> tuple[object, str | None]:
        context = dg.build_sensor_context(cursor=cursor, instance=instance)
        return sensor(context), context.cursor

    ledger.record_surveillance([event_row(_event("old-high", Severity.HIGH, now - timedelta(days=3), ended=True))])
    ledger.record_surveillance([event_row(_event("low-1", Severity.LOW, now - timedelta(minutes=5)))])
    first, cursor = tick(None)
    assert isinstance(first, dg.SkipReason)  # the first tick: an old, ended event is history, LOW is no reason

    ledger.record_surveillance([event_row(_event("high-1", Severity.HIGH, now - timedelta(minutes=1)))])
    second, cursor = tick(cursor)
    assert isinstance(second, dg.RunRequest) and second.run_key == "risk:high-1"
    assert second.tags["helios/worst"] == "HIGH"

    repeat, cursor = tick(cursor)  # the same event, seen again: no second run
    assert isinstance(repeat, dg.SkipReason)

    ledger.record_surveillance([event_row(_event("low-2", Severity.LOW, now))])
    assert isinstance(tick(cursor)[0], dg.SkipReason)

    ledger.record_surveillance([event_row(_event("crit-1", Severity.CRITICAL, now, ended=True)),
                                event_row(_event("high-2", Severity.HIGH, now))])  # fmt: skip
    both, _ = tick(cursor)
    assert isinstance(both, dg.RunRequest) and both.run_key == "risk:crit-1,high-2"
    assert both.tags["helios/worst"] == "CRITICAL" and both.tags["helios/events"] == "2"
