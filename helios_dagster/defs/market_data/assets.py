"""`raw_candles` (source-native candles) and `candles` (1m/5m/15m), pair x day partitions."""

from collections import Counter
from datetime import date
from functools import partial

import dagster as dg
import pandas as pd

from helios_core.candles import resample
from helios_core.errors import SourceError
from helios_core.timeframes import Timeframe
from helios_dagster import daily
from helios_dagster.daily import Progress, sorted_partitions
from helios_dagster.partitions import day_bounds
from helios_dagster.resources import LakeResource, MarketDataResource
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings

RAW = "raw_candles"
CANDLES = "candles"


def raw_timeframe(lake: Lake, pair: str, day: date) -> str:
    found = lake.timeframes(RAW, pair, day)
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {RAW} file for {pair} on {day}, found {found or 'none'}")
    return found[0]


def build_assets(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    day_asset = partial(daily.day_asset, partitions, "market_data")

    @day_asset(name=RAW, description="Candles at the source's native timeframe, validated, one file per pair-day.")
    def raw_candles(
        context: dg.AssetExecutionContext, lake: LakeResource, market_data: MarketDataResource
    ) -> dg.MaterializeResult:
        source, store = market_data.open(), lake.lake()
        parts = sorted_partitions(context)
        progress = Progress(context.log, RAW, len(parts))
        rows: Counter[str] = Counter()
        for pair, day in parts:
            start, end = day_bounds(day)
            batch = source.fetch_candles(pair, start, end)
            if batch.candles.empty:
                raise SourceError(f"{batch.origin}: no {pair} candles on {day}; nothing written for this partition")
            tf = str(batch.timeframe)
            meta = {
                "complete_from": batch.complete_from.isoformat(),
                "complete_until": batch.complete_until.isoformat(),
                "origin": batch.origin,
                "source": source.name,
            }
            store.write(RAW, pair, tf, day, batch.candles, meta)
            for stale in store.timeframes(RAW, pair, day):
                if stale != tf:  # a rewritten day replaces whatever timeframe was there before
                    store.path(RAW, pair, stale, day).unlink()
            rows[pair] += len(batch.candles)
            progress.tick(f"{pair} {day}: {len(batch.candles)} candles")
        return dg.MaterializeResult(
            metadata={"partitions": len(parts), "rows_by_pair": dict(rows), "source": source.name}
        )

    @day_asset(
        name=CANDLES,
        deps=[raw_candles],
        description="1m/5m/15m candles resampled from raw_candles; only closed candles.",
    )
    def candles(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()
        parts = sorted_partitions(context)
        progress = Progress(context.log, CANDLES, len(parts))
        rows: Counter[str] = Counter()
        skipped: set[str] = set()
        for pair, day in parts:
            native_text = raw_timeframe(store, pair, day)
            raw, meta = store.read(RAW, pair, native_text, day)
            native = Timeframe.parse(native_text)
            complete_from, complete_until = pd.Timestamp(meta["complete_from"]), pd.Timestamp(meta["complete_until"])
            for target_text in settings.timeframes:
                target = Timeframe.parse(target_text)
                if target < native or not native.divides(target):
                    skipped.add(f"{pair} {target_text} (source is {native_text})")
                    continue
                out = resample(raw, native, target, complete_until, complete_from)
                span = {k: meta[k] for k in ("complete_from", "complete_until")}
                store.write(CANDLES, pair, target_text, day, out, span | {"native": native_text})
                rows[f"{pair} {target_text}"] += len(out)
            progress.tick(f"{pair} {day}")
        for note in sorted(skipped):
            context.log.info(f"not built: {note}")
        return dg.MaterializeResult(
            metadata={"partitions": len(parts), "rows": dict(rows), "not_built": sorted(skipped)}
        )

    return [raw_candles, candles]
