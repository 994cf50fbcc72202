"""Backtest evaluation: performance metrics of an equity curve and its trades, and baselines."""
