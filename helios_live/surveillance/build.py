"""The surveillance tier as the settings describe it: its sources, its store and its monitors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from helios_core.surveillance.events import SecurityEvent
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.surveillance.anomaly import AnomalyScorer
from helios_live.surveillance.monitor import Sources, Surveillance
from helios_live.surveillance.store import SurveillanceStore
from helios_live.venues.hyperliquid.info import HyperliquidInfo
from helios_live.venues.hyperliquid.stream import HyperliquidTrades
from helios_live.venues.reference.tickers import BinanceTicker, CoinbaseTicker, ValrTicker


def sources(settings: HeliosSettings, now: Callable[[], float] = time.time) -> Sources:
    """`now` stamps the answers that carry no time of their own: the clock the monitors run on."""
    s, timeout = settings.surveillance, min(settings.http.timeout_s, settings.surveillance.deadline_s)
    info = HyperliquidInfo(s.hyperliquid_url, timeout, now=now)
    binance = BinanceTicker(s.binance_url, timeout, now=now)
    coinbase = CoinbaseTicker(s.coinbase_url, timeout, now=now)
    valr = ValrTicker(s.valr_url, timeout, now=now)
    closers = [c.aclose for c in (info, binance, coinbase, valr)]
    trades = HyperliquidTrades(s.hyperliquid_ws_url, s.assets, _unset, now) if s.hyperliquid_ws_url else None
    return Sources(info, [binance, coinbase], valr, trades, closers)


def _unset(quote: object) -> None:
    """The trade stream's handler until the monitors take it over."""


def build_surveillance(
    settings: HeliosSettings,
    ledger: Ledger,
    pairs: Sequence[str],
    on_event: Callable[[SecurityEvent], Awaitable[None] | None] | None = None,
    now: Callable[[], float] = time.time,
) -> Surveillance:
    s = settings.surveillance
    spool = settings.home / "surveillance-spool.sqlite" if s.spool_max else None
    store = SurveillanceStore(ledger, spool, s.spool_max)
    scorer = AnomalyScorer.from_root(settings.home / "surveillance" / "anomaly")
    return Surveillance(s, sources(settings, now), store, pairs, on_event, scorer)
