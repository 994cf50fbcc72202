"""Lake in, feature / label frames out, for one pair over a range of days.

Each range reads the warm-up history it needs from earlier days (and, for labels, the
horizon from the next day), so a partition computed alone equals the same rows of a
longer run (within the recursive check's tolerance).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from helios_core.features.batch import block_features
from helios_core.features.multi import assemble
from helios_core.features.spec import TIMEFRAMES, max_warmup
from helios_core.labels import BarrierConfig, LookaheadConfig, lookahead_labels, triple_barrier_labels
from helios_core.timeframes import Timeframe
from helios_core.volatility import ewma_volatility
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings

CANDLES = "candles"


def lookback_days(timeframe: Timeframe) -> int:
    """Whole days of history that cover the longest warm-up at this timeframe."""
    return math.ceil(max_warmup() * timeframe.seconds / 86400)


def load(store: Lake, pair: str, tf: str, first: date, last: date) -> pd.DataFrame:
    frame = store.read_range(CANDLES, pair, tf, first, last)
    return frame.reset_index(drop=True)


def available_timeframes(store: Lake, pair: str, first: date, last: date, dataset: str = CANDLES) -> list[str]:
    """Feature timeframes with a `dataset` file for `pair` in the range, finest first."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    found = {tf for day in days for tf in store.timeframes(dataset, pair, day)}
    return [tf for tf in TIMEFRAMES if tf in found]


def in_days(ts: pd.Series, first: date, last: date) -> np.ndarray:
    start = pd.Timestamp(first, tz="UTC")
    end = pd.Timestamp(last + timedelta(days=1), tz="UTC")
    mask: np.ndarray = ((ts >= start) & (ts < end)).to_numpy()
    return mask


def pair_features(
    store: Lake, settings: HeliosSettings, pair: str, first: date, last: date
) -> tuple[str, pd.DataFrame]:
    """(base timeframe, frame): one row per base candle opened in `[first, last]` with `ts`,
    decision time `t` (its close) and the 90 features (NaN = not valid)."""
    timeframes = available_timeframes(store, pair, first, last)
    if not timeframes:
        raise FileNotFoundError(f"no candles for {pair} between {first} and {last}; materialise candles first")
    reference = settings.reference_pair if settings.reference_pair not in ("", pair) else None
    blocks = {}
    for tf_text in timeframes:
        tf = Timeframe.parse(tf_text)
        start = first - timedelta(days=lookback_days(tf))
        candles = load(store, pair, tf_text, start, last)
        if reference is not None:
            ref = load(store, reference, tf_text, start, last)
            if not ref.empty:
                candles = candles.merge(
                    ref[["ts", "close"]].rename(columns={"close": "ref_close"}), on="ts", how="left"
                )
        blocks[tf_text] = (candles["ts"], block_features(candles, tf))
    base = timeframes[0]
    base_ts = blocks[base][0]
    keep = in_days(base_ts, first, last)
    ts = base_ts[keep].reset_index(drop=True)
    vectors = assemble(blocks, ts + Timeframe.parse(base).duration)
    out = pd.concat([pd.DataFrame({"ts": ts, "t": vectors.index}), vectors.reset_index(drop=True)], axis=1)
    return base, out


def pair_labels(store: Lake, settings: HeliosSettings, pair: str, base: str, first: date, last: date) -> pd.DataFrame:
    """Look-ahead and triple-barrier labels for base candles opened in `[first, last]`."""
    tf = Timeframe.parse(base)
    lookahead = LookaheadConfig(
        settings.label.timeframe, settings.label.candles, settings.label.up, settings.label.down
    )
    barrier = BarrierConfig(
        settings.label.timeframe, settings.label.candles, settings.barrier.k_up, settings.barrier.k_down
    )
    horizon_days = math.ceil(lookahead.horizon / pd.Timedelta(days=1))
    candles = load(store, pair, base, first - timedelta(days=1), last + timedelta(days=horizon_days))
    volatility = ewma_volatility(pd.Series(np.log(candles["close"].to_numpy())).diff())
    ahead = lookahead_labels(candles, tf, lookahead)
    barriers = triple_barrier_labels(candles, tf, volatility, barrier)
    out = pd.concat([candles[["ts"]], ahead, barriers.drop(columns="t")], axis=1)
    return out.loc[in_days(out["ts"], first, last)].reset_index(drop=True)
