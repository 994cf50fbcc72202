"""Closed candles through the anomaly scorer inside the monitors: a crash candle far outside
what the model was fitted on is a `market_anomaly` event that scales entries on the pair, and
the next ordinary minute ends it. Here the scorer is the 3-sigma fallback fitted on the
candles before (no ONNX model is needed to show the wiring; tests/integration/
test_surveillance_anomaly_asset.py scores through ONNX)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd

from helios_core.features.streaming import Bar
from helios_core.surveillance.anomaly import SigmaModel, market_stats_batch
from helios_core.surveillance.events import Severity
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.surveillance.anomaly import AnomalyScorer
from helios_live.surveillance.monitor import Sources, Surveillance
from helios_live.surveillance.store import SurveillanceStore
from tests.conftest import sample


class Silent:
    venue = "none"

    async def quotes(self, assets: Any) -> Any:
        raise AssertionError("no check runs in this test")


def test_a_crash_candle_is_a_market_anomaly_that_scales_entries_and_ends(tmp_path: Path) -> None:
    candles = sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(3000).reset_index(drop=True)
    train, live = candles.iloc[:2000], candles.iloc[2000:2200].reset_index(drop=True)
    scorer = AnomalyScorer(None, SigmaModel.fit(market_stats_batch(train)))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()
    settings = HeliosSettings(home=tmp_path)
    surveil = Surveillance(
        settings.surveillance, Sources(Silent(), []), SurveillanceStore(ledger, None), ("BTCPERP",), scorer=scorer
    )  # type: ignore[arg-type]
    seen: list[tuple[str, str, bool]] = []
    surveil.on_event = lambda e: seen.append((e.type, str(e.severity), e.active))

    def bar(row: Any, close: float | None = None) -> Bar:
        ts = int(pd.Timestamp(row["ts"]).timestamp())
        c = row["close"] if close is None else close
        return Bar(ts, row["open"], max(row["high"], c), min(row["low"], c), c, row["volume"])

    async def run() -> None:
        for i in range(120):
            surveil.candle("BTCPERP", bar(live.iloc[i]), 0.0)
        assert surveil.latest_anomaly["BTCPERP"].method == "sigma"
        crash = live.iloc[120]
        surveil.candle("BTCPERP", bar(crash, crash["open"] * 0.85), 1.0)  # -15 % in a minute
        await asyncio.sleep(0)
        scaling = surveil.restriction("BTCPERP")
        assert scaling.scaling is not None or scaling.blocking is not None
        for i in range(121, 200):
            surveil.candle("BTCPERP", bar(live.iloc[i]), 2.0 + i)
        await surveil.close()

    asyncio.run(run())
    assert seen[0][0] == "market_anomaly" and seen[0][2] and Severity[seen[0][1]] >= Severity.MEDIUM
    assert seen[-1][2] is False  # ended once the minutes were ordinary again
    assert surveil.restriction("BTCPERP").scaling is None
    events = ledger.security_events(type="market_anomaly", since=None).items
    assert events and all(e["asset"] == "BTCPERP" for e in events)
