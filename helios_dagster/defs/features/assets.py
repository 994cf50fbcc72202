"""`features`, `labels` and `training_dataset`: pair x day partitions, like the candles."""

from collections import Counter
from datetime import date, timedelta
from functools import partial

import dagster as dg
import pandas as pd

from helios_core.features.spec import FEATURE_SET_VERSION, TIMEFRAMES, vector_names
from helios_core.labels import Label
from helios_core.timeframes import Timeframe
from helios_dagster import daily
from helios_dagster.daily import Progress, day_runs, sorted_partitions
from helios_dagster.defs.features.compute import (
    available_timeframes,
    in_days,
    lookback_days,
    pair_features,
    pair_labels,
)
from helios_dagster.partitions import DATE, PAIR
from helios_dagster.resources import LakeResource
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings

FEATURES, LABELS, DATASET = "features", "labels", "training_dataset"
CANDLES = dg.AssetKey("candles")


def shifted(start_offset: int, end_offset: int) -> dg.MultiPartitionMapping:
    """Same pair, days [d + start_offset, d + end_offset] of the upstream asset."""
    return dg.MultiPartitionMapping(
        {
            PAIR: dg.DimensionPartitionMapping(PAIR, dg.IdentityPartitionMapping()),
            DATE: dg.DimensionPartitionMapping(
                DATE, dg.TimeWindowPartitionMapping(start_offset=start_offset, end_offset=end_offset)
            ),
        }
    )


def write_days(
    store: Lake, dataset: str, pair: str, tf: str, frame: pd.DataFrame, first: date, last: date, meta: dict[str, str]
) -> int:
    """Split a frame by the UTC day of `ts` and write one lake file per day; returns days written."""
    written = 0
    day = first
    while day <= last:
        rows = frame.loc[in_days(frame["ts"], day, day)]
        if not rows.empty:
            store.write(dataset, pair, tf, day, rows.reset_index(drop=True), meta)
            written += 1
        day += timedelta(days=1)
    return written


def read_days(store: Lake, dataset: str, pair: str, first: date, last: date) -> tuple[str, pd.DataFrame]:
    """(base timeframe, rows) of a per-base-timeframe dataset for `pair` over `[first, last]`."""
    timeframes = available_timeframes(store, pair, first, last, dataset)
    if not timeframes:
        raise FileNotFoundError(f"no {dataset} for {pair} between {first} and {last}")
    return timeframes[0], store.read_range(dataset, pair, timeframes[0], first, last)


def build_assets(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    day_asset = partial(daily.day_asset, partitions, "features")
    history = max(lookback_days(Timeframe.parse(tf)) for tf in TIMEFRAMES)
    horizon = pd.Timedelta(seconds=Timeframe.parse(settings.label.timeframe).seconds * settings.label.candles)

    @day_asset(
        name=FEATURES,
        deps=[dg.AssetDep(CANDLES, partition_mapping=shifted(-history, 0))],
        description=f"The {len(vector_names())} features (feature set {FEATURE_SET_VERSION}) at every base-candle "
        "close; NaN = not valid.",
    )
    def features(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()
        runs = day_runs(sorted_partitions(context))
        progress = Progress(context.log, FEATURES, len(runs))
        coverage: dict[str, dict[str, float]] = {}
        for pair, first, last in runs:
            base, frame = pair_features(store, settings, pair, first, last)
            meta = {
                "feature_set_version": FEATURE_SET_VERSION,
                "base_timeframe": base,
                "reference_pair": settings.reference_pair,
            }
            days = write_days(store, FEATURES, pair, base, frame, first, last, meta)
            valid = frame[list(vector_names())].notna().mean()
            coverage[pair] = {
                tf: round(float(valid[[c for c in valid.index if c.startswith(f"{tf}.")]].mean()), 4)
                for tf in TIMEFRAMES
            }
            progress.tick(f"{pair} {first}..{last}: {len(frame)} rows, {days} days")
        return dg.MaterializeResult(
            metadata={"feature_set_version": FEATURE_SET_VERSION, "valid_fraction_by_timeframe": coverage}
        )

    @day_asset(
        name=LABELS,
        deps=[dg.AssetDep(CANDLES, partition_mapping=shifted(-1, 1))],
        description="Look-ahead (design 11.1) and triple-barrier labels per base candle; null where the future "
        "is missing.",
    )
    def labels(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()
        balance: dict[str, dict[str, int]] = {}
        for pair, first, last in day_runs(sorted_partitions(context)):
            timeframes = available_timeframes(store, pair, first, last)
            if not timeframes:
                raise FileNotFoundError(f"no candles for {pair} between {first} and {last}; materialise candles first")
            base = timeframes[0]
            frame = pair_labels(store, settings, pair, base, first, last)
            meta = {"horizon": str(horizon), "label_timeframe": settings.label.timeframe}
            write_days(store, LABELS, pair, base, frame, first, last, meta)
            balance[pair] = class_balance(frame["label"])
            context.log.info(f"{LABELS}: {pair} {first}..{last}: {balance[pair]}")
        return dg.MaterializeResult(metadata={"class_balance": balance})

    @day_asset(
        name=DATASET,
        deps=[features, labels],
        description="Time-ordered samples: features, validity mask, labels and label_end for purging.",
    )
    def training_dataset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()
        totals: Counter[str] = Counter()
        for pair, first, last in day_runs(sorted_partitions(context)):
            base, feats = read_days(store, FEATURES, pair, first, last)
            _, labs = read_days(store, LABELS, pair, first, last)
            joined = feats.merge(labs.drop(columns=["t"]), on="ts", how="left", validate="one_to_one")
            joined.insert(0, "pair", pair)
            joined["n_valid"] = joined[list(vector_names())].notna().sum(axis=1).astype("int16")
            meta = {
                "feature_set_version": FEATURE_SET_VERSION,
                "purge_column": "label_end",
                "embargo": str(horizon),
            }
            write_days(store, DATASET, pair, base, joined, first, last, meta)
            totals.update({"rows": len(joined), "labelled": int(joined["label"].notna().sum())})
        return dg.MaterializeResult(
            metadata={
                "rows": totals["rows"],
                "labelled": totals["labelled"],
                "purge_column": "label_end",
                "feature_set_version": FEATURE_SET_VERSION,
            }
        )

    return [features, labels, training_dataset]


def class_balance(labels: pd.Series) -> dict[str, int]:
    counts = labels.value_counts(dropna=False)
    out = {member.name: int(counts.get(int(member), 0)) for member in Label}
    out["unlabelled"] = int(labels.isna().sum())
    return out
