"""The marts the analytics build publishes for the live service and `helios report`.

The warehouse is a DuckDB file that allows one writer and locks readers out while dbt builds;
the live service must never wait on it. After each build the Dagster asset copies the marts
users read to `$HELIOS_HOME/analytics/<mart>.parquet` (each file replaced atomically), and this
module reads them with pyarrow: no DuckDB lock, no dbt, nothing of the batch side.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ANALYTICS_DIR = "analytics"
PUBLISHED = ("mart_performance", "mart_go_live", "mart_daily_pnl", "mart_decision_funnel", "mart_model_performance")
BUILT_AT = "helios.built_at"  # a key of each file's Parquet metadata
MISSING = "no analytics built yet: run the analytics job (`helios analytics`, or `analytics_job` in Dagster)"


@dataclass(frozen=True)
class Analytics:
    """The published marts as rows; `detail` says why there are none."""

    built_at: datetime | None
    marts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    detail: str | None = None

    def rows(self, mart: str, ledger: str | None = None) -> list[dict[str, Any]]:
        found = self.marts.get(mart, [])
        return [r for r in found if ledger is None or r.get("ledger") == ledger]

    @property
    def ledgers(self) -> list[str]:
        return sorted({str(r["ledger"]) for r in self.marts.get("mart_performance", [])})


def analytics_dir(home: Path) -> Path:
    return home / ANALYTICS_DIR


def read_analytics(home: Path) -> Analytics:
    folder = analytics_dir(home)
    marts: dict[str, list[dict[str, Any]]] = {}
    built: list[datetime] = []
    for name in PUBLISHED:
        path = folder / f"{name}.parquet"
        if not path.exists():
            continue
        table = pq.read_table(path)
        stamp = (table.schema.metadata or {}).get(BUILT_AT.encode())
        if stamp:
            built.append(datetime.fromisoformat(stamp.decode()).astimezone(UTC))
        marts[name] = [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]
    if not marts:
        return Analytics(built_at=None, detail=f"{MISSING} ({folder} holds no marts)")
    return Analytics(built_at=min(built) if built else None, marts=marts)


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO text, NaN and infinities as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class AnalyticsCache:
    """`read_analytics(home)`, read again only when a published file appears, goes or changes
    (its mtime or size): a stat per mart per call. A file that cannot be read (half-copied by
    hand, or corrupt) gives no marts and says why: the live service never fails for the batch side."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._key: tuple[tuple[int, int] | None, ...] | None = None
        self._value: Analytics | None = None

    def _stamp(self) -> tuple[tuple[int, int] | None, ...]:
        folder = analytics_dir(self.home)
        stamps: list[tuple[int, int] | None] = []
        for name in PUBLISHED:
            try:
                stat = (folder / f"{name}.parquet").stat()
            except OSError:
                stamps.append(None)
            else:
                stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def read(self) -> Analytics:
        key = self._stamp()
        with self._lock:
            if self._value is not None and self._key == key:
                return self._value
        try:
            value = read_analytics(self.home)
        except (OSError, ValueError, pa.ArrowException) as e:
            value = Analytics(built_at=None, detail=f"the published analytics cannot be read: {e}")
        with self._lock:
            self._key, self._value = key, value
        return value
