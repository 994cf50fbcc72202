"""Batch features: one timeframe block over a whole candle history, vectorised.

The streaming implementation (`streaming.py`) must agree with this to 1e-9 relative on every
valid row; the two share no code on purpose, so each checks the other.

Input: a validated candle frame of one timeframe, optionally with per-candle columns
`book_bid`, `book_ask`, `book_bid_qty`, `book_ask_qty` (order book at the candle's close,
10 levels) and `ref_close` (the reference pair's close for the same candle); NaN = unknown.
Output: a frame of the 30 block features, NaN where a feature is not valid (warm-up not
reached in the current gap-free segment, missing input, or a zero denominator).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from helios_core.features.spec import NAMES, SPECS
from helios_core.timeframes import Timeframe

BOOK_COLUMNS = ("book_bid", "book_ask", "book_bid_qty", "book_ask_qty")


def segments(ts: pd.Series, timeframe: Timeframe) -> tuple[np.ndarray, np.ndarray]:
    """Segment id per row (a new one after every missing candle) and 1-based row number in it."""
    stamps = ts.to_numpy(dtype="int64")
    breaks = np.r_[True, np.diff(stamps) != timeframe.seconds * 1_000_000_000]
    seg = np.cumsum(breaks) - 1
    starts = np.flatnonzero(breaks)
    position = np.arange(len(stamps)) - starts[seg] + 1
    return seg, position


def _rolling_std(x: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """Two-pass standard deviation over trailing windows; NaN until the window is full.

    pandas' rolling std drifts by up to ~1e-8 relative on price series; this is exact to
    rounding, which the 1e-9 batch-vs-streaming parity needs.
    """
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        windows = sliding_window_view(x, window)
        out[window - 1 :] = np.sqrt(np.var(windows, axis=1, ddof=ddof))
    return out


def _divide(num: np.ndarray | pd.Series, den: np.ndarray | pd.Series) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0)
    np.divide(num, den, out=out, where=ok)
    return out


def _ema(x: pd.Series, seg: np.ndarray, span: int) -> pd.Series:
    """ta's EMA (pandas ewm, adjust=False) restarted in every segment; leading NaNs skipped."""
    return x.groupby(seg, sort=False).transform(lambda s: s.ewm(span=span, adjust=False).mean())


def _wilder(x: pd.Series, seg: np.ndarray, window: int) -> pd.Series:
    return x.groupby(seg, sort=False).transform(lambda s: s.ewm(alpha=1 / window, adjust=False).mean())


def _rsi(close: pd.Series, seg: np.ndarray, window: int) -> np.ndarray:
    """RSI as ta.momentum.RSIIndicator computes it, per segment (a segment's first diff is 0)."""
    diff = close.groupby(seg, sort=False).diff()
    up = diff.where(diff > 0, 0.0)
    down = -diff.where(diff < 0, 0.0)
    avg_up, avg_down = _wilder(up, seg, window), _wilder(down, seg, window)
    ratio = avg_up / avg_down
    return np.where(avg_down == 0, 100.0, 100.0 - 100.0 / (1.0 + ratio)) / 100.0


def indicators(candles: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """The technical indicators in price units (SMA, EMA, MACD, Bollinger, RSI 0..100).

    Exposed so tests can hold them against the `ta` library; rows before ta's own
    `min_periods` are NaN as in ta.
    """
    close = candles["close"].astype(float)
    seg, position = segments(candles["ts"], timeframe)
    ema12, ema26 = _ema(close, seg, 12), _ema(close, seg, 26)
    macd = (ema12 - ema26).where(position >= 26)
    std20 = _rolling_std(close.to_numpy(), 20, ddof=0)
    sma20 = close.rolling(20).mean()
    return pd.DataFrame(
        {
            "sma_20": sma20,
            "sma_50": close.rolling(50).mean(),
            "ema_12": ema12.where(position >= 12),
            "ema_26": ema26.where(position >= 26),
            "macd": macd,
            "macd_signal": _ema(macd, seg, 9).where(position >= 26 + 8),
            "bb_upper": sma20 + 2 * std20,
            "bb_lower": sma20 - 2 * std20,
            "rsi_14": pd.Series(_rsi(close, seg, 14) * 100, index=close.index).where(position >= 14),
            "rsi_7": pd.Series(_rsi(close, seg, 7) * 100, index=close.index).where(position >= 7),
        }
    )


def block_features(candles: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """The 30 features of one timeframe block, NaN where not valid. Index follows `candles`."""
    o, h, low, c, v = (candles[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    volume = pd.Series(v)
    seg, position = segments(candles["ts"], timeframe)
    log_close = np.log(c)
    ret1 = np.r_[np.nan, np.diff(log_close)]
    out: dict[str, np.ndarray] = {
        "ret_1": ret1,
        "ret_5": np.r_[np.full(5, np.nan), log_close[5:] - log_close[:-5]][: len(c)],
        "ret_20": np.r_[np.full(20, np.nan), log_close[20:] - log_close[:-20]][: len(c)],
        "body": (c - o) / o,
        "upper_wick": (h - np.maximum(o, c)) / c,
        "lower_wick": (np.minimum(o, c) - low) / c,
        "range": (h - low) / c,
        "volatility_20": _rolling_std(ret1, 20, ddof=1),
    }
    volume_sum20 = volume.rolling(20).sum().to_numpy()
    typical = (h + low + c) / 3
    out["vwap_dev_20"] = _divide(pd.Series(typical * v).rolling(20).sum(), volume_sum20 * c) - 1.0
    highest = pd.Series(h).rolling(20).max().to_numpy()
    lowest = pd.Series(low).rolling(20).min().to_numpy()
    out["range_position_20"] = _divide(c - lowest, highest - lowest)

    volume_mean20 = volume.rolling(20).mean().to_numpy()
    out["volume_ratio_20"] = _divide(v, volume_mean20)
    out["volume_zscore_20"] = _divide(v - volume_mean20, _rolling_std(v, 20, ddof=0))
    out["volume_trend_5_20"] = _divide(volume.rolling(5).mean(), volume_mean20)
    counts = candles["trade_count"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    out["trade_count_ratio_20"] = _divide(counts, pd.Series(counts).rolling(20).mean())
    signed = pd.Series(np.sign(ret1) * v).rolling(20).sum().to_numpy()
    out["signed_volume_20"] = _divide(signed, volume_sum20)

    ind = indicators(candles, timeframe)
    out["rsi_14"] = (ind["rsi_14"] / 100).to_numpy()
    out["rsi_7"] = (ind["rsi_7"] / 100).to_numpy()
    out["macd"] = ind["macd"].to_numpy() / c
    out["macd_signal"] = ind["macd_signal"].to_numpy() / c
    for name in ("sma_20", "sma_50", "ema_12", "ema_26", "bb_upper", "bb_lower"):
        out[name] = ind[name].to_numpy() / c - 1.0

    bid, ask, bid_qty, ask_qty = (_column(candles, k) for k in BOOK_COLUMNS)
    out["spread"] = _divide(ask - bid, (ask + bid) / 2)
    out["book_imbalance_10"] = _divide(bid_qty - ask_qty, bid_qty + ask_qty)
    out["book_depth_10"] = _divide(bid_qty + ask_qty, volume_mean20)
    out["trade_flow_imbalance"] = _divide(2 * candles["buy_volume"].to_numpy(dtype=float) - v, v)
    log_ref = np.log(_column(candles, "ref_close"))
    ref_ret = np.r_[np.nan, np.diff(log_ref)]
    ref_ret[position < 2] = np.nan  # no return across a gap in the pair's own series
    out["corr_ref_30"] = _correlation(ret1, ref_ret, 30)

    frame = pd.DataFrame({name: out[name] for name in NAMES}, index=candles.index)
    for spec in SPECS:
        frame.loc[position < spec.warmup, spec.name] = np.nan
    return frame.where(np.isfinite(frame))


def _column(candles: pd.DataFrame, name: str) -> np.ndarray:
    if name not in candles.columns:
        return np.full(len(candles), np.nan)
    values: np.ndarray = candles[name].to_numpy(dtype=float)
    return values


def _correlation(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Trailing Pearson correlation, two-pass per window; NaN if any input is unknown."""
    out = np.full(len(x), np.nan)
    if len(x) < window:
        return out
    xs, ys = sliding_window_view(x, window), sliding_window_view(y, window)
    dx = xs - xs.mean(axis=1, keepdims=True)
    dy = ys - ys.mean(axis=1, keepdims=True)
    out[window - 1 :] = _divide((dx * dy).sum(axis=1), np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1)))
    return out
