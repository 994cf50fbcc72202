"""The Parquet lake: `<root>/<dataset>/pair=<PAIR>/timeframe=<TF>/date=<YYYY-MM-DD>.parquet`.

One file per (dataset, pair, timeframe, day), written atomically (temporary file in the same
folder, then rename), so a reader never sees half a file and rewriting a day is idempotent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_META_PREFIX = b"helios."


@dataclass(frozen=True)
class PartitionFile:
    """One file of the lake, as found on disk."""

    dataset: str
    pair: str
    timeframe: str
    day: date
    path: Path


class Lake:
    """Read and write day files of the hive-partitioned Parquet lake."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, dataset: str, pair: str, timeframe: str, day: date) -> Path:
        return self.root / dataset / f"pair={pair}" / f"timeframe={timeframe}" / f"date={day.isoformat()}.parquet"

    def write(
        self, dataset: str, pair: str, timeframe: str, day: date, frame: pd.DataFrame, meta: Mapping[str, str]
    ) -> Path:
        """Replace the day file atomically; `meta` is stored in the Parquet footer."""
        target = self.path(dataset, pair, timeframe, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        footer = dict(table.schema.metadata or {})
        footer.update({_META_PREFIX + k.encode(): v.encode() for k, v in meta.items()})
        table = table.replace_schema_metadata(footer)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def exists(self, dataset: str, pair: str, timeframe: str, day: date) -> bool:
        return self.path(dataset, pair, timeframe, day).exists()

    def timeframes(self, dataset: str, pair: str, day: date) -> list[str]:
        """Timeframes that have a file for this pair and day."""
        pattern = f"{dataset}/pair={pair}/timeframe=*/date={day.isoformat()}.parquet"
        return sorted(p.parent.name.removeprefix("timeframe=") for p in self.root.glob(pattern))

    def read(self, dataset: str, pair: str, timeframe: str, day: date) -> tuple[pd.DataFrame, dict[str, str]]:
        """Read one day file and its Helios metadata; FileNotFoundError names the path."""
        path = self.path(dataset, pair, timeframe, day)
        if not path.exists():
            raise FileNotFoundError(f"lake partition missing: {path}")
        table = pq.read_table(path)
        footer = table.schema.metadata or {}
        meta = {k[len(_META_PREFIX) :].decode(): v.decode() for k, v in footer.items() if k.startswith(_META_PREFIX)}
        return table.to_pandas(), meta

    def meta(self, dataset: str, pair: str, timeframe: str, day: date) -> dict[str, str]:
        """The Helios metadata of a day file, read from its footer alone."""
        footer = pq.read_schema(self.path(dataset, pair, timeframe, day)).metadata or {}
        return {k[len(_META_PREFIX) :].decode(): v.decode() for k, v in footer.items() if k.startswith(_META_PREFIX)}

    def read_range(self, dataset: str, pair: str, timeframe: str, start: date, end: date) -> pd.DataFrame:
        """Concatenate the day files present in `[start, end]`, in time order."""
        frames = []
        day = start
        while day <= end:
            if self.exists(dataset, pair, timeframe, day):
                frames.append(self.read(dataset, pair, timeframe, day)[0])
            day += timedelta(days=1)
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def files(self, dataset: str) -> Iterator[PartitionFile]:
        """Every day file of a dataset, sorted by pair, timeframe and day."""
        base = self.root / dataset
        for path in sorted(base.glob("pair=*/timeframe=*/date=*.parquet")):
            pair = path.parent.parent.name.removeprefix("pair=")
            timeframe = path.parent.name.removeprefix("timeframe=")
            day = date.fromisoformat(path.stem.removeprefix("date="))
            yield PartitionFile(dataset, pair, timeframe, day, path)
