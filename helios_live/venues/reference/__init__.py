"""Reference venues read for surveillance only: public tickers of Binance, Coinbase Exchange and
VALR, compared against Hyperliquid's prices."""

from helios_live.venues.reference.tickers import BinanceTicker, CoinbaseTicker, ValrTicker

__all__ = ["BinanceTicker", "CoinbaseTicker", "ValrTicker"]
