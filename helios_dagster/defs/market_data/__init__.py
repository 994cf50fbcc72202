"""Market data: raw candles from a source, resampled candles, quality checks, schedule."""
