"""Pair x day partitions shared by every market-data asset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from helios_live.settings import HeliosSettings

PAIR = "pair"
DATE = "date"


def pair_day_partitions(settings: HeliosSettings) -> dg.MultiPartitionsDefinition:
    """Pairs in alphabetical order, so a key range `d1|A...d2|B` means the pairs from A to B."""
    return dg.MultiPartitionsDefinition(
        {
            PAIR: dg.StaticPartitionsDefinition(sorted(settings.pairs)),
            DATE: dg.DailyPartitionsDefinition(start_date=settings.history_start.isoformat(), timezone="UTC"),
        }
    )


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, date]:
    """`2024-01-02|BTCZAR` (dimensions sorted by name) -> ("BTCZAR", date(2024, 1, 2))."""
    keys = (
        key.keys_by_dimension
        if isinstance(key, dg.MultiPartitionKey)
        else dict(zip((DATE, PAIR), key.split("|"), strict=True))
    )
    return keys[PAIR], date.fromisoformat(keys[DATE])


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def range_tags(pair: str, first: date, last: date) -> dict[str, str]:
    """Run tags selecting `pair` x `[first, last]` in one run (single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": f"{first.isoformat()}|{pair}",
        "dagster/asset_partition_range_end": f"{last.isoformat()}|{pair}",
    }
