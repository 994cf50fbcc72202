"""What every pair x day asset shares: its decorator, the run's partitions, progress logs."""

from collections.abc import Callable
from datetime import date, timedelta
from itertools import groupby
from typing import Any

import dagster as dg

from helios_core.errors import HeliosError
from helios_dagster.partitions import split_key


def day_asset(
    partitions: dg.MultiPartitionsDefinition, group: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`@dg.asset` for a pair x day asset: a backfill of any range is a single run."""
    decorator: Callable[[Callable[..., Any]], dg.AssetsDefinition] = dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=group,
        kinds={"parquet"},
        **kwargs,
    )
    return decorator


def sorted_partitions(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[tuple[str, date]]:
    """The run's (pair, day) partitions, pair-major and in time order; none is an error."""
    parts = sorted(split_key(k) for k in context.partition_keys)
    if not parts:
        raise HeliosError("this run selects no pair-day partition; a key range runs from <day>|<pair> to <day>|<pair>")
    return parts


def day_runs(parts: list[tuple[str, date]]) -> list[tuple[str, date, date]]:
    """Group sorted (pair, day) partitions into (pair, first day, last day) runs of consecutive days."""
    runs = []
    for pair, items in groupby(parts, key=lambda p: p[0]):
        days = [d for _, d in items]
        start = prev = days[0]
        for day in days[1:]:
            if day != prev + timedelta(days=1):
                runs.append((pair, start, prev))
                start = day
            prev = day
        runs.append((pair, start, prev))
    return runs


class Progress:
    """Logs `done/total` about every tenth of the way, so long backfills show movement."""

    def __init__(self, log: dg.DagsterLogManager, what: str, total: int) -> None:
        self.log, self.what, self.total, self.done = log, what, total, 0
        self.step = max(1, total // 10)

    def tick(self, label: str) -> None:
        self.done += 1
        if self.done % self.step == 0 or self.done == self.total:
            self.log.info(f"{self.what}: {self.done}/{self.total} partitions ({label})")
