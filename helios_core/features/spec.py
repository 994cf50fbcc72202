"""The feature-set definition: names in vector order, groups, inputs, units, warm-up lengths.

Thirty features per timeframe (price 10, volume 5, technical 10, microstructure 5), all
scale-free. The vector is timeframe-major: the `1m` block, then `5m`, then `15m`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FEATURE_SET_VERSION = "1.0.0"
TIMEFRAMES = ("1m", "5m", "15m")

# A recursive (EMA-type) feature counts as warmed up once the weight left on its starting
# value has decayed below this; the recursive leakage check uses a matching tolerance.
CONVERGENCE = 1e-8


def ema_warmup(alpha: float) -> int:
    """Candles after which an EMA with smoothing `alpha` has forgotten its start to CONVERGENCE."""
    return math.ceil(math.log(CONVERGENCE) / math.log(1.0 - alpha))


Z20 = math.sqrt(19)  # the largest |z-score| possible within 20 values (ddof 0)
EMA12 = ema_warmup(2 / 13)
RSI14 = ema_warmup(1 / 14)
RSI7 = ema_warmup(1 / 7)
EMA26 = ema_warmup(2 / 27)
MACD_SIGNAL = EMA26 + ema_warmup(2 / 10)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of a timeframe block.

    `warmup` is the number of candles of the current gap-free segment, the current one
    included, that the feature needs before it is valid. `needs` names the input beyond
    OHLCV: `trades` (trade counts / taker buy volume), `book` (order book at candle close),
    `reference` (the reference pair's returns); without it the feature is masked.
    `bounds` is the documented range every valid value lies in (checked on the asset).
    """

    name: str
    group: str
    warmup: int
    unit: str
    formula: str
    bounds: tuple[float, float]
    needs: str = "candles"


F = FeatureSpec
SPECS: tuple[FeatureSpec, ...] = (
    F("ret_1", "price", 2, "log-return", "ln(close / close[-1])", (-2.0, 2.0)),
    F("ret_5", "price", 6, "log-return", "ln(close / close[-5])", (-2.0, 2.0)),
    F("ret_20", "price", 21, "log-return", "ln(close / close[-20])", (-2.0, 2.0)),
    F("body", "price", 1, "fraction", "(close - open) / open", (-1.0, 2.0)),
    F("upper_wick", "price", 1, "fraction", "(high - max(open, close)) / close", (0.0, 2.0)),
    F("lower_wick", "price", 1, "fraction", "(min(open, close) - low) / close", (0.0, 1.0)),
    F("range", "price", 1, "fraction", "(high - low) / close", (0.0, 2.0)),
    F("volatility_20", "price", 21, "log-return", "sample std (ddof 1) of ret_1 over 20 candles", (0.0, 2.0)),
    F("vwap_dev_20", "price", 20, "fraction", "VWAP_20 / close - 1, typical price (h + l + c) / 3", (-1.0, 2.0)),
    F("range_position_20", "price", 20, "0..1", "(close - min low_20) / (max high_20 - min low_20)", (0.0, 1.0)),
    F("volume_ratio_20", "volume", 20, "ratio", "volume / mean volume_20", (0.0, 20.0)),
    F("volume_zscore_20", "volume", 20, "z-score", "(volume - mean_20) / std_20 (ddof 0)", (-Z20, Z20)),
    F("volume_trend_5_20", "volume", 20, "ratio", "mean volume_5 / mean volume_20", (0.0, 4.0)),
    F("trade_count_ratio_20", "volume", 20, "ratio", "trade_count / mean trade_count_20", (0.0, 20.0), "trades"),
    F("signed_volume_20", "volume", 21, "-1..1", "sum(sign(ret_1) x volume)_20 / sum(volume)_20", (-1.0, 1.0)),
    F("rsi_14", "technical", RSI14, "0..1", "RSI(14, Wilder) / 100, as ta.momentum.RSIIndicator", (0.0, 1.0)),
    F("rsi_7", "technical", RSI7, "0..1", "RSI(7, Wilder) / 100", (0.0, 1.0)),
    F("macd", "technical", EMA26, "fraction", "(EMA_12 - EMA_26) / close, as ta.trend.MACD", (-1.0, 1.0)),
    F("macd_signal", "technical", MACD_SIGNAL, "fraction", "EMA_9(MACD) / close", (-1.0, 1.0)),
    F("sma_20", "technical", 20, "fraction", "SMA_20 / close - 1", (-1.0, 2.0)),
    F("sma_50", "technical", 50, "fraction", "SMA_50 / close - 1", (-1.0, 2.0)),
    F("ema_12", "technical", EMA12, "fraction", "EMA_12 / close - 1", (-1.0, 2.0)),
    F("ema_26", "technical", EMA26, "fraction", "EMA_26 / close - 1", (-1.0, 2.0)),
    F("bb_upper", "technical", 20, "fraction", "(SMA_20 + 2 std_20, ddof 0) / close - 1", (-1.0, 3.0)),
    F("bb_lower", "technical", 20, "fraction", "(SMA_20 - 2 std_20, ddof 0) / close - 1", (-2.0, 2.0)),
    F("spread", "microstructure", 1, "fraction", "(best ask - best bid) / mid, at candle close", (0.0, 2.0), "book"),
    F(
        "book_imbalance_10",
        "microstructure",
        1,
        "-1..1",
        "(bid - ask qty) / (bid + ask qty), 10 levels",
        (-1.0, 1.0),
        "book",
    ),
    F(
        "book_depth_10",
        "microstructure",
        20,
        "ratio",
        "(bid + ask qty, 10 levels) / mean volume_20",
        (0.0, math.inf),
        "book",
    ),
    F(
        "trade_flow_imbalance",
        "microstructure",
        1,
        "-1..1",
        "(taker buy - taker sell volume) / volume",
        (-1.0, 1.0),
        "trades",
    ),
    F(
        "corr_ref_30",
        "microstructure",
        31,
        "-1..1",
        "Pearson corr of ret_1 with the reference pair's, 30",
        (-1.0, 1.0),
        "reference",
    ),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SPECS)
WARMUPS: tuple[int, ...] = tuple(s.warmup for s in SPECS)
BLOCK = len(SPECS)


def vector_names(timeframes: tuple[str, ...] = TIMEFRAMES) -> tuple[str, ...]:
    """Names of the full vector in order: `1m.ret_1`, ..., `15m.corr_ref_30`."""
    return tuple(f"{tf}.{name}" for tf in timeframes for name in NAMES)


def max_warmup() -> int:
    return max(WARMUPS)
