"""Volatility estimates from closed candles only (nothing after t reaches the value at t)."""

from __future__ import annotations

import numpy as np
import pandas as pd

RISKMETRICS_LAMBDA = 0.94


def ewma_volatility(log_returns: pd.Series, lam: float = RISKMETRICS_LAMBDA, min_periods: int = 30) -> pd.Series:
    """Per-candle volatility (std of log-returns) by an exponentially weighted mean of squared
    returns (RiskMetrics); NaN until `min_periods` returns. The value at t uses returns <= t.

    The risk tier's fallback when a GARCH fit fails is this same estimate, and the
    triple-barrier label takes its barriers from it (or from any other per-candle series).
    """
    if not 0.0 < lam < 1.0:
        raise ValueError("lam must be in (0, 1)")
    variance = (log_returns**2).ewm(alpha=1.0 - lam, adjust=False, min_periods=min_periods).mean()
    return pd.Series(np.sqrt(variance.to_numpy()), index=log_returns.index)
