"""A real training dataset in memory: BTC-PERP features and look-ahead labels, as the assets build them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helios_core.features.spec import vector_names
from helios_core.labels import LookaheadConfig, lookahead_labels
from tests.features_support import M1, batch_vectors, one_minute


def dataset(days: int = 8) -> pd.DataFrame:
    candles = one_minute()
    candles = candles.loc[candles["ts"] < candles["ts"].iloc[0] + pd.Timedelta(days=days)].reset_index(drop=True)
    vectors = batch_vectors(candles).reset_index(drop=True)
    labels = lookahead_labels(candles, M1, LookaheadConfig(up=0.005, down=0.005))
    frame = pd.concat([candles[["ts"]], labels, vectors], axis=1)
    frame["n_valid"] = frame[list(vector_names())].notna().sum(axis=1)
    frame.insert(0, "pair", "BTCPERP")
    return frame


def balanced_enough(frame: pd.DataFrame) -> bool:
    counts = np.bincount(frame["label"].dropna().astype(int), minlength=3)
    return bool((counts > 50).all())
