"""The engine as one kernel: the same code decides live, in a replay and in a backtest."""
