from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from helios_core.features.spec import FEATURE_SET_VERSION
from helios_dagster.defs.model.training import load_dataset
from helios_dagster.ml.data import TrainingError
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings


def write(store: Lake, pair: str, tf: str, version: str = FEATURE_SET_VERSION) -> None:
    frame = pd.DataFrame({"pair": [pair], "ts": [pd.Timestamp("2024-01-01", tz="UTC")]})
    store.write("training_dataset", pair, tf, date(2024, 1, 1), frame, {"feature_set_version": version})


def test_by_default_the_pairs_of_the_finest_base_timeframe_train(tmp_path: Path) -> None:
    store = Lake(tmp_path)
    write(store, "BTCPERP", "1m")
    write(store, "ETHBTC", "5m")
    frames, base, _ = load_dataset(store, HeliosSettings(home=tmp_path, train_pairs=()))
    assert base == "1m" and [f["pair"].iloc[0] for f in frames] == ["BTCPERP"]


def test_named_pairs_must_share_a_base_timeframe_and_a_feature_set(tmp_path: Path) -> None:
    store = Lake(tmp_path)
    write(store, "BTCPERP", "1m")
    write(store, "ETHBTC", "5m", version="0.9.0")
    with pytest.raises(TrainingError, match="mix base timeframes"):
        load_dataset(store, HeliosSettings(home=tmp_path, train_pairs=("BTCPERP", "ETHBTC")))
    frames, _, _ = load_dataset(store, HeliosSettings(home=tmp_path, train_pairs=("ETHBTC",)))
    assert frames[0].attrs["feature_set_version"] == "0.9.0"  # build_samples refuses it later
