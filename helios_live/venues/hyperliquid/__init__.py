"""Hyperliquid, read-only for surveillance: the info endpoint, the trades WebSocket, and a
loopback server (`simulator.FakeMarkets`) that speaks them and the reference tickers."""
