"""Local servers that speak exchange protocols on loopback, for tests, demos and backtests."""
