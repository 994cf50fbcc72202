"""Risk math: volatility (Tier 3 GARCH), position sizing and leverage, portfolio limits (Tier 5).

Pure functions and values only; the live engine and the batch side both call them, and every
denial comes back as a value with its reason so that the ledger can record it.
"""
