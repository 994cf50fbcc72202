"""Copy the marts users read out of the warehouse (helios_live/data/analytics.py says why)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from helios_live.data.analytics import BUILT_AT, PUBLISHED, analytics_dir


def publish_marts(warehouse: Path, home: Path, now: datetime | None = None) -> list[str]:
    """Each published mart to `<home>/analytics/<mart>.parquet`, replaced in one rename, with
    the build's time in the file's metadata. Returns the marts written."""
    stamp = (now or datetime.now(UTC)).isoformat()
    folder = analytics_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        present = {row[0] for row in connection.sql("select table_name from information_schema.tables").fetchall()}
        for mart in PUBLISHED:
            if mart not in present:
                continue
            table = connection.sql(f"select * from {mart} order by all").to_arrow_table()  # noqa: S608
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), BUILT_AT: stamp})
            partial = folder / f".{mart}.parquet.partial"
            pq.write_table(table, partial)
            os.replace(partial, folder / f"{mart}.parquet")
            written.append(mart)
    return written
