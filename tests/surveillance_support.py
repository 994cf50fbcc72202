"""A surveillance tier wired to the fake markets on loopback, for tests."""

from __future__ import annotations

from pathlib import Path

from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.surveillance.build import build_surveillance
from helios_live.surveillance.monitor import Surveillance
from helios_live.venues.hyperliquid.simulator import FakeMarkets

T0 = 1_790_000_040.0  # a whole minute
TRACKED = "0x" + "c" * 40
VAULT = "0x" + "d" * 40


def settings_for(markets: FakeMarkets, home: Path, **overrides: object) -> HeliosSettings:
    values: dict[str, object] = {
        "surveillance_hyperliquid_url": f"{markets.url}/hyperliquid",
        "surveillance_hyperliquid_ws_url": f"{markets.ws_url}",
        "surveillance_binance_url": f"{markets.url}/binance",
        "surveillance_coinbase_url": f"{markets.url}/coinbase",
        "surveillance_valr_url": f"{markets.url}/valr",
        "surveillance_assets": "BTC,ETH",
        "surveillance_users": TRACKED,
        "surveillance_vault": VAULT,
        "surveillance_deadline_s": 5.0,
    }
    values.update(overrides)
    return HeliosSettings(home=home, pairs=("BTCZAR",), **values)  # type: ignore[arg-type]


def calm(markets: FakeMarkets, btc: float = 100_000.0, zar: float = 18.0) -> None:
    """Every venue agrees: BTC at `btc` USD, USDTZAR at `zar`, BTCZAR at their product."""
    for kind in ("hyperliquid-oracle", "hyperliquid-mark", "hyperliquid-mid", "binance", "coinbase"):
        markets.set_price(kind, "BTC", btc)
        markets.set_price(kind, "ETH", btc / 30)
    markets.set_price("valr", "BTCZAR", btc * zar)
    markets.set_price("valr", "USDTZAR", zar)


def monitor(markets: FakeMarkets, ledger: Ledger, home: Path, **overrides: object) -> Surveillance:
    settings = settings_for(markets, home, **overrides)
    return build_surveillance(settings, ledger, settings.pairs, now=markets.now)
