"""Replays and backtests: recorded market data through the kernel under a simulated clock."""
