"""The kernel as `helios live serve` runs it: the clock, the VALR data client, the VALR venue
(SHADOW and LIVE), the lake, (in-process) the surveillance monitors the settings choose, and the
alerts."""

from __future__ import annotations

from helios_core.timeframes import as_datetime
from helios_live.alerts.build import build_alerts
from helios_live.clock import Clock, ExchangeClock, LiveClock
from helios_live.data.lake import Lake
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.valr import valr_venue
from helios_live.ledger import Ledger
from helios_live.ledger.spool import Spool
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from helios_live.surveillance.build import build_surveillance
from helios_live.venues.valr.data_client import ValrDataClient
from helios_live.venues.valr.rest import ValrRestSource


def build_kernel(settings: HeliosSettings, ledger: Ledger) -> Kernel:
    ops = LiveClock()  # model polls, health and restart backoffs run on the machine's time
    clock: Clock = ExchangeClock() if settings.live.clock == "exchange" else ops
    rest = ValrRestSource(
        settings.valr.base_url,
        settings.http.timeout_s,
        settings.http.max_retries,
        clock=lambda: as_datetime(clock.timestamp()),  # which candles are complete, on the engine's time
    )
    client = ValrDataClient(
        settings.live.ws_url,
        rest,
        candles=settings.live.candles,
        backfill_trades_max_minutes=settings.live.backfill_trades_max_minutes,
    )
    lake = Lake(settings.lake_root) if settings.lake_root.exists() else None
    spool = Spool(settings.spool_path, settings.ledger.spool_max) if settings.ledger.spool_max else None
    in_process = settings.surveillance.run == "in-process"
    surveillance = build_surveillance(settings, ledger, settings.live.pairs) if in_process else None
    return Kernel(
        settings,
        ledger,
        Registry(settings.models_root),
        clock,
        client,
        lake=lake,
        ops_clock=ops,
        spool=spool,
        venue=valr_venue,
        surveillance=surveillance,
        alerts=build_alerts(settings.alerts),
    )
