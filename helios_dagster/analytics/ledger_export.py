"""The ledgers' tables as Parquet in the lake, where dbt reads them.

DuckDB's sqlite and postgres scanners download their extensions at run time, which fails on a
machine without the internet; SQLAlchemy reads every ledger Helios can open (SQLite or
PostgreSQL) with the drivers already installed. Each export is a whole snapshot: ledger rows
change (a position closes, an order fills), so every table of every ledger is written again
and the new tree replaces the old one in one rename. Layout:

    <lake>/ledger/<table>/ledger=<name>/data.parquet

`ledger` names the ledger (`live`, `demo`, `backtest.<run>...`); the `sources` table holds each
one's capital, kind and address (password hidden). An empty table is written with its columns,
so a model over it is empty, not an error.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Boolean, Float, Integer, Table, create_engine, inspect, make_url, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from helios_live.ledger.models import Base, UTCDateTime
from helios_live.settings import HeliosSettings

log = logging.getLogger(__name__)

LEDGER_DIR = "ledger"
SOURCES = "sources"
# The tables the analytics read; the rest (journal, context snapshots, ...) stay in the ledger.
TABLES = (
    "predictions",
    "decision_steps",
    "risk_decisions",
    "llm_decisions",
    "positions",
    "orders",
    "fills",
    "portfolio_snapshots",
    "engine_events",
    "security_events",
    "rebalancing_events",
)
BATCH_ROWS = 50_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SOURCES_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("url", pa.string()),
        ("capital", pa.float64()),
        ("exported_at", pa.timestamp("us", tz="UTC")),
        ("missing_tables", pa.string()),
    ]
)


@dataclass(frozen=True)
class LedgerSource:
    name: str
    url: str
    kind: str  # live, demo or backtest
    capital: float

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"ledger source name {self.name!r}: letters, digits, '.', '_' and '-' only")


@dataclass
class Exported:
    """What one export wrote: rows per source and table, and what it could not read."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        return sorted(self.rows)


def discover(settings: HeliosSettings) -> list[LedgerSource]:
    """The configured ledger (`live`), the demo's replay ledger and every backtest's ledger under
    `$HELIOS_HOME/backtests`: what a user of this home has traded, simulated or replayed."""
    capital = settings.trading.capital
    found = [LedgerSource("live", settings.resolved_database_url, "live", capital)]
    demo = settings.home.resolve() / "demo" / "live.db"
    if demo.exists():
        found.append(LedgerSource("demo", f"sqlite:///{demo}", "demo", capital))
    root = settings.home.resolve() / "backtests"
    for path in sorted(root.glob("**/ledger.sqlite")) if root.exists() else []:
        found.append(LedgerSource(backtest_name(settings, path), f"sqlite:///{path}", "backtest", capital))
    return found


def backtest_name(settings: HeliosSettings, ledger: Path) -> str:
    """`backtest.<run folder, dotted>`: the name a backtest's ledger is exported under."""
    run = ledger.resolve().parent.relative_to(settings.home.resolve() / "backtests")
    return "backtest." + ".".join(run.parts)


def export_ledgers(
    sources: list[LedgerSource], lake_root: Path, *, now: datetime | None = None, say: Callable[[str], None] = log.info
) -> Exported:
    """Write every table of every reachable ledger under `<lake>/ledger`, replacing the last
    export whole. A ledger that is missing or unreachable is named in `problems` and left out."""
    now = now or datetime.now(UTC)
    final = lake_root / LEDGER_DIR
    staging = lake_root / f".{LEDGER_DIR}-{uuid.uuid4().hex[:8]}"
    result = Exported()
    try:
        for source in sources:
            _export_one(source, staging, now, result, say)
        _swap(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _export_one(source: LedgerSource, root: Path, now: datetime, result: Exported, say: Callable[[str], None]) -> None:
    shown = make_url(source.url).render_as_string(hide_password=True)
    if source.url.startswith("sqlite") and not _sqlite_exists(source.url):
        result.problems.append(f"{source.name}: no ledger yet at {shown}")
        return
    engine = create_engine(source.url)
    try:
        present = set(inspect(engine).get_table_names())
        if "predictions" not in present:
            result.problems.append(f"{source.name}: {shown} is not a Helios ledger (no predictions table)")
            return
        counts: dict[str, int] = {}
        for name in TABLES:
            table = Base.metadata.tables[name]
            rows = _rows(engine, table) if name in present else iter(())
            counts[name] = _write(root / name / f"ledger={source.name}" / "data.parquet", _schema(table), rows)
        missing = sorted(set(TABLES) - present)
        _write_sources(root, source, shown, now, missing)
        result.rows[source.name] = counts
        say(f"ledger {source.name}: {sum(counts.values()):,} rows from {shown}" + _missing_note(missing))
    except SQLAlchemyError as exc:
        result.problems.append(f"{source.name}: could not read {shown}: {type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        engine.dispose()


def _missing_note(missing: list[str]) -> str:
    return f" (older schema, no {', '.join(missing)})" if missing else ""


def _sqlite_exists(url: str) -> bool:
    database = make_url(url).database
    return database is not None and database not in ("", ":memory:") and Path(database).exists()


def _rows(engine: Engine, table: Table) -> Iterator[dict[str, Any]]:
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=BATCH_ROWS).execute(select(table).order_by(table.c.id))
        for row in result.mappings():
            yield dict(row)


def _arrow_type(column: Any) -> pa.DataType:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Integer):  # BigInteger and its SQLite variant included
        return pa.int64()
    if isinstance(kind, Float):
        return pa.float64()
    return pa.string()  # String, Text, and JSON as its text


def _schema(table: Table) -> pa.Schema:
    return pa.schema([(c.name, _arrow_type(c)) for c in table.columns])


def _cell(value: Any, kind: pa.DataType) -> Any:
    if value is None or not pa.types.is_string(kind) or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _write(path: Path, schema: pa.Schema, rows: Iterator[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    json_columns = [f.name for f in schema if pa.types.is_string(f.type)]
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            for name in json_columns:
                row[name] = _cell(row.get(name), pa.string())
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written, batch = written + len(batch), []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return written + len(batch)


def _write_sources(root: Path, source: LedgerSource, shown: str, now: datetime, missing: list[str]) -> None:
    row = {"kind": source.kind, "url": shown, "capital": source.capital, "exported_at": now}
    row["missing_tables"] = ",".join(missing)
    _write(root / SOURCES / f"ledger={source.name}" / "data.parquet", _SOURCES_SCHEMA, iter([row]))


def _swap(staging: Path, final: Path) -> None:
    """The new export in place of the old in one rename, so dbt never reads half of each."""
    staging.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}-old-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["LEDGER_DIR", "TABLES", "Exported", "LedgerSource", "discover", "export_ledgers"]
