"""What the lake holds: rows, days, time span and missing candles per pair and timeframe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from helios_core.candles import find_gaps
from helios_core.timeframes import Timeframe


@dataclass(frozen=True)
class SeriesCoverage:
    """One pair at one timeframe in a lake dataset."""

    pair: str
    timeframe: str
    days: int
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp
    missing: int
    gaps: int


def lake_coverage(lake_root: Path, dataset: str = "candles") -> list[SeriesCoverage]:
    """Scan `<lake_root>/<dataset>` with DuckDB (hive partitions) and count gaps between first and last candle."""
    pattern = lake_root / dataset / "pair=*" / "timeframe=*" / "date=*.parquet"
    if not any((lake_root / dataset).glob("pair=*/timeframe=*/date=*.parquet")):
        return []
    with duckdb.connect() as con:
        frame = con.execute(
            "SELECT pair, timeframe, ts FROM read_parquet(?, hive_partitioning = true) ORDER BY pair, timeframe, ts",
            [str(pattern)],
        ).df()
        days = con.execute(
            "SELECT pair, timeframe, count(*) AS days FROM glob(?) g, "
            "LATERAL (SELECT regexp_extract(g.file, 'pair=([^/]+)', 1) AS pair, "
            "regexp_extract(g.file, 'timeframe=([^/]+)', 1) AS timeframe) GROUP BY ALL",
            [str(pattern)],
        ).df()
    day_count = {(r.pair, r.timeframe): int(r.days) for r in days.itertuples()}
    out = []
    for (pair, tf_text), group in frame.groupby(["pair", "timeframe"], sort=True):
        tf = Timeframe.parse(str(tf_text))
        ts = pd.to_datetime(group["ts"], utc=True)
        candles = pd.DataFrame({"ts": ts})
        first, last = ts.iloc[0], ts.iloc[-1]
        gaps = find_gaps(candles, tf, first, last + tf.duration)
        out.append(
            SeriesCoverage(
                str(pair),
                str(tf_text),
                day_count.get((pair, tf_text), 0),
                len(group),
                first,
                last,
                sum(g.missing for g in gaps),
                len(gaps),
            )
        )
    return sorted(out, key=lambda c: (c.pair, Timeframe.parse(c.timeframe)))


def coverage_table(rows: list[SeriesCoverage]) -> list[str]:
    """Fixed-width lines for a terminal: a header, then one line per series."""
    lines = [
        f"{'pair':<9}{'tf':>4}{'days':>6}{'rows':>9}  {'first (UTC)':<16}  {'last (UTC)':<16}{'missing':>8}{'gaps':>6}"
    ]
    for c in rows:
        span = f"{c.first:%Y-%m-%d %H:%M}  {c.last:%Y-%m-%d %H:%M}"
        lines.append(f"{c.pair:<9}{c.timeframe:>4}{c.days:>6}{c.rows:>9}  {span}{c.missing:>8}{c.gaps:>6}")
    return lines
