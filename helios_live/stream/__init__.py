"""Exchange market data in: wire messages -> typed events -> closed 1m candles."""
