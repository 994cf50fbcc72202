"""Asset checks on `candles`: the GX suite (blocking), the gap report, trades vs candles."""

from collections import Counter
from collections.abc import Iterator
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd

from helios_core.candles import find_gaps
from helios_core.timeframes import Timeframe
from helios_dagster.daily import sorted_partitions
from helios_dagster.defs.market_data.assets import CANDLES
from helios_dagster.partitions import day_bounds
from helios_dagster.quality import candle_suite, validate
from helios_dagster.resources import LakeResource, MarketDataResource
from helios_live.data.lake import Lake
from helios_live.settings import HeliosSettings

MAX_MISSING_FRACTION = 0.01
PRICE_TOLERANCE = 1e-9
_LISTED = 100


def _grid(tf: Timeframe, meta: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Open times a complete series would have: inside the known history, whole candles only."""
    start = pd.Timestamp(meta["complete_from"]).ceil(tf.pandas_freq)
    return start, pd.Timestamp(meta["complete_until"]).floor(tf.pandas_freq)


def build_checks(settings: HeliosSettings, partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    def candle_files(
        store: Lake, context: dg.AssetCheckExecutionContext
    ) -> Iterator[tuple[str, date, Timeframe, pd.DataFrame, dict[str, str]]]:
        for pair, day in sorted_partitions(context):
            for tf in settings.timeframes:
                if store.exists(CANDLES, pair, tf, day):
                    frame, meta = store.read(CANDLES, pair, tf, day)
                    yield pair, day, Timeframe.parse(tf), frame, meta

    @dg.asset_check(
        asset=CANDLES,
        partitions_def=partitions,
        blocking=True,
        description="Great Expectations suite: unique increasing ts, low <= open/close <= high, volume >= 0, no nulls.",
    )
    def candles_expectations(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        store = lake.lake()
        series: dict[tuple[str, str], list[pd.DataFrame]] = {}
        for pair, _day, tf, frame, _meta in candle_files(store, context):
            series.setdefault((pair, str(tf)), []).append(frame)
        failed: list[dict[str, object]] = []
        # One validation per pair and timeframe over the run's days in order: GX costs
        # ~0.15 s a call, which per day file would dominate a year-long backfill.
        for (pair, tf_text), frames in series.items():
            for failure in validate(pd.concat(frames, ignore_index=True), candle_suite()):
                examples = [str(x) for x in failure.examples]
                failed.append({"pair": pair, "timeframe": tf_text, **failure.__dict__, "examples": examples})
        files = sum(len(frames) for frames in series.values())
        return dg.AssetCheckResult(
            passed=not failed and files > 0, metadata={"files_validated": files, "failures": failed[:_LISTED]}
        )

    @dg.asset_check(
        asset=CANDLES,
        partitions_def=partitions,
        description=f"Missing candles per pair, timeframe and day; warns above {MAX_MISSING_FRACTION:.0%} missing.",
    )
    def candles_gaps(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        store = lake.lake()
        missing: Counter[str] = Counter()
        expected: Counter[str] = Counter()
        listed: list[dict[str, object]] = []
        for pair, day, tf, frame, meta in candle_files(store, context):
            start, end = _grid(tf, meta)
            label = f"{pair} {tf}"
            expected[label] += max(0, int((end - start).total_seconds()) // tf.seconds)
            for gap in find_gaps(frame, tf, start, end):
                missing[label] += gap.missing
                listed.append(
                    {
                        "pair": pair,
                        "timeframe": str(tf),
                        "day": str(day),
                        "start": gap.start.isoformat(),
                        "end": gap.end.isoformat(),
                        "missing": gap.missing,
                    }
                )
        fractions = {k: missing[k] / expected[k] for k in expected if expected[k] > 0}
        worst = {k: round(v, 4) for k, v in fractions.items() if v > MAX_MISSING_FRACTION}
        return dg.AssetCheckResult(
            passed=not worst,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "missing_by_series": dict(missing),
                "expected_by_series": dict(expected),
                "over_threshold": worst,
                "gaps": listed[:_LISTED],
                "gap_count": len(listed),
            },
        )

    @dg.asset_check(
        asset=CANDLES,
        partitions_def=partitions,
        description="Where the source has a second, independent record of the same minutes (a candle file beside "
        "trades, or VALR's trade history beside its buckets), the stored 1m candles must equal it.",
    )
    def candles_match_reference(
        context: dg.AssetCheckExecutionContext, lake: LakeResource, market_data: MarketDataResource
    ) -> dg.AssetCheckResult:
        if not market_data.check_reference:
            return dg.AssetCheckResult(
                passed=True,
                metadata={"candles_compared": 0, "mismatched": 0},
                description=f"not run: check_reference is off for the {market_data.kind} source",
            )
        store, source = lake.lake(), market_data.open()
        compared = mismatched = 0
        problems: list[str] = []
        for pair, day in sorted_partitions(context):
            if not store.exists(CANDLES, pair, "1m", day):
                continue
            reference = source.reference_candles(pair, *day_bounds(day))
            if reference is None:
                continue
            stored, _ = store.read(CANDLES, pair, "1m", day)
            bad = mismatches(stored, reference)
            compared += len(stored)
            mismatched += len(bad)
            problems.extend(f"{pair} {ts}" for ts in bad[:10])
        return dg.AssetCheckResult(
            passed=mismatched == 0,
            metadata={"candles_compared": compared, "mismatched": mismatched, "examples": problems[:_LISTED]},
            description=None if compared else "no partition of this run has a second record to compare with",
        )

    return [candles_expectations, candles_gaps, candles_match_reference]


def mismatches(stored: pd.DataFrame, built: pd.DataFrame) -> list[str]:
    """Open times where two 1m candle frames differ (missing on one side, or any OHLCV value)."""
    joined = stored.merge(built, on="ts", how="outer", suffixes=("_a", "_b"), indicator=True)
    bad = joined["_merge"] != "both"
    for column in ("open", "high", "low", "close", "volume"):
        a, b = joined[f"{column}_a"].to_numpy(), joined[f"{column}_b"].to_numpy()
        with np.errstate(invalid="ignore"):
            bad |= ~(np.abs(a - b) <= PRICE_TOLERANCE * np.maximum(np.abs(a), np.abs(b)))
    return [str(ts) for ts in joined.loc[bad, "ts"]]
