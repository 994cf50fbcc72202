"""The ledger's hot writes as DB-API calls on the transaction's own connection.

SQLAlchemy Core cost about 1 ms of Python per statement on this machine (benchmarks/
bench_decision.py), and a trading minute writes eight tables. Here each table is one
`executemany` on SQLite (its loop runs in C) and one multi-row statement on PostgreSQL (one
round trip, `psycopg2.extras.execute_values`). The schema stays SQLAlchemy's and Alembic's: the
statements are built from the table metadata, and every value goes through the column type's
own bind processor, so a row stored here reads back exactly as one stored through SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from helios_live.ledger.models import Base

Processor = Callable[[Any], Any] | None
SQLITE_CHUNK = 500  # rows per multi-row statement: far below SQLite's 32,766 variables
Where = tuple[str, ...]
"""The columns a row is matched on (an UPDATE's key)."""


class Bulk:
    """Inserts and updates on one connection of either backend.

    On PostgreSQL the inserts wait, as SQL, until a statement whose rows are needed (or `flush`):
    then they travel with it in one round trip, since each costs about 1 ms here and a trading
    minute's eight tables would otherwise be eight."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.postgres = self.dialect.name == "postgresql"
        self.cursor = connection.connection.cursor()
        self._waiting: list[bytes] = []

    def flush(self) -> None:
        """Send the inserts still waiting (PostgreSQL)."""
        if self._waiting:
            self._send(b"")

    def _send(self, statement: bytes) -> list[tuple[Any, ...]]:
        """The waiting inserts and `statement`, in one round trip; the rows `statement` returns."""
        batch = b";\n".join([*self._waiting, statement] if statement else self._waiting)
        self._waiting = []
        with self._driver(batch.decode(errors="replace")[:200]):
            self.cursor.execute(batch)
            return [tuple(row) for row in self.cursor.fetchall()] if statement else []

    def _rows_sql(self, template: str, values: Sequence[Sequence[Any]]) -> bytes:
        # One call for all rows: per call, not per value, is what mogrify costs.
        sql: bytes = self.cursor.mogrify(",".join([template] * len(values)), [v for row in values for v in row])
        return sql

    @contextmanager
    def _driver(self, statement: str) -> Iterator[None]:
        """A driver's error as SQLAlchemy's (IntegrityError, OperationalError...), which is what
        the ledger turns into its own errors."""
        dbapi = self.dialect.loaded_dbapi
        try:
            yield
        except dbapi.Error as exc:
            # As SQLAlchemy does for its own statements: a connection the server dropped is
            # invalidated, so that no rollback is tried on it and the pool never hands it out again.
            gone = self.dialect.is_disconnect(exc, self.connection.connection.dbapi_connection, self.cursor)
            if gone:
                self.connection.invalidate(exc)
            raise DBAPIError.instance(statement, None, exc, dbapi.Error, connection_invalidated=gone) from exc

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        shape = _shape(self.dialect, table)
        values = [shape.values(row) for row in rows]
        head = f"INSERT INTO {shape.name} ({shape.columns}) VALUES"
        if self.postgres:
            self._waiting.append(head.encode() + b" " + self._rows_sql(shape.template, values))
            return
        with self._driver(head):
            self.cursor.executemany(f"{head} ({shape.marks})", values)

    def insert_returning(self, table: str, rows: Sequence[dict[str, Any]], suffix: str) -> list[tuple[Any, ...]]:
        """Insert with `suffix` (ON CONFLICT ... RETURNING ...): the rows it returns."""
        if not rows:
            return []
        shape = _shape(self.dialect, table)
        values = [shape.values(row) for row in rows]
        head = f"INSERT INTO {shape.name} ({shape.columns}) VALUES"
        if self.postgres:
            return self._send(head.encode() + b" " + self._rows_sql(shape.template, values) + b" " + suffix.encode())
        with self._driver(head):
            out: list[tuple[Any, ...]] = []
            for start in range(0, len(values), SQLITE_CHUNK):
                chunk = values[start : start + SQLITE_CHUNK]
                marks = ", ".join([f"({shape.marks})"] * len(chunk))
                self.cursor.execute(f"{head} {marks} {suffix}", [v for row in chunk for v in row])
                out += self.cursor.fetchall()
            return out

    def update_returning(
        self,
        table: str,
        rows: Sequence[dict[str, Any]],
        where: Where,
        condition: tuple[str, str],
        returning: str,
        equals: tuple[str, str, str] | None = None,
    ) -> list[list[tuple[Any, ...]]]:
        """For each row: set its other columns on the table's row matching its `where` columns
        and `condition` (a column and the SQL that follows it); what each row's update returned
        (the `returning` column), in the order of `rows`. `equals` (column, old, new) also
        sets `column` to whether the row's `old` column equals the `new` value given."""
        if not rows:
            return []
        shape = _shape(self.dialect, table)
        names = list(rows[0])
        assigned = [n for n in names if n not in where]
        q = shape.quote
        if self.postgres:
            # One statement: the rows as a VALUES list joined on their key, each with its index.
            quoted = [q(n) for n in names]
            template = "(" + ", ".join(["%s::integer", *(f"%s::{shape.types[n]}" for n in names)]) + ")"
            sets = ", ".join([f"{q(n)} = v.{q(n)}" for n in assigned])
            if equals is not None:
                sets += f", {q(equals[0])} = (t.{q(equals[1])} = v.{q(equals[2])})"
            match = " AND ".join(f"t.{shape.quote(n)} = v.{shape.quote(n)}" for n in where)
            head = f"UPDATE {shape.name} AS t SET {sets} FROM (VALUES "  # noqa: S608 -- names from the metadata
            tail = (
                f") AS v(i, {', '.join(quoted)})"
                f" WHERE {match} AND t.{q(condition[0])} {condition[1]} RETURNING v.i, t.{q(returning)}"
            )
            values = [(i, *shape.values_of(row, names)) for i, row in enumerate(rows)]
            found = self._send(head.encode() + self._rows_sql(template, values) + tail.encode())
            out: list[list[tuple[Any, ...]]] = [[] for _ in rows]
            for i, *rest in found:
                out[i].append(tuple(rest))
            return out
        sets = ", ".join(f"{q(n)} = ?" for n in assigned)
        bound = [*assigned]
        if equals is not None:
            sets += f", {q(equals[0])} = ({q(equals[1])} = ?)"
            bound.append(equals[2])
        match = " AND ".join(f"{q(n)} = ?" for n in where)
        when = f"{q(condition[0])} {condition[1]}"
        statement = f"UPDATE {shape.name} SET {sets} WHERE {match} AND {when} RETURNING {q(returning)}"  # noqa: S608
        results: list[list[tuple[Any, ...]]] = []
        with self._driver(statement):
            for row in rows:  # SQLite runs each in C, in-process: one per row costs little
                self.cursor.execute(statement, shape.values_of(row, [*bound, *where]))
                results.append([tuple(r) for r in self.cursor.fetchall()])
        return results

    def processed(self, table: str, column: str, value: Any) -> Any:
        """`value` as the driver is handed it for `column` (to match what a statement returns)."""
        return _shape(self.dialect, table).process(column, value)


class _Shape:
    """A table's insertable columns, quoted, with their bind processors and PostgreSQL types."""

    def __init__(self, dialect: Dialect, table: Table) -> None:
        self.quote = dialect.identifier_preparer.quote
        self.name = dialect.identifier_preparer.format_table(table)
        columns = [c for c in table.columns if not (c.primary_key and c.autoincrement)]
        self.names = [c.name for c in columns]
        self.columns = ", ".join(self.quote(n) for n in self.names)
        self.marks = ", ".join("?" * len(columns))
        self.template = "(" + ", ".join(["%s"] * len(columns)) + ")"
        self.processors: dict[str, Processor] = {
            c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns
        }
        # Cast to the column's type without its length: an explicit cast to VARCHAR(n) truncates
        # silently, where assigning a longer value to the column fails (as SQLAlchemy's would).
        self.types = {c.name: re.sub(r"^VARCHAR\(\d+\)$", "VARCHAR", c.type.compile(dialect)) for c in table.columns}
        self._processed = [(i, p) for i, n in enumerate(self.names) if (p := self.processors[n]) is not None]

    def values(self, row: dict[str, Any]) -> list[Any]:
        # A column the row does not name is NULL, as in SQLAlchemy's executemany.
        out = [row.get(n) for n in self.names]
        for i, processor in self._processed:
            out[i] = processor(out[i])
        return out

    def values_of(self, row: dict[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
        return tuple(self.process(n, row[n]) for n in names)

    def process(self, column: str, value: Any) -> Any:
        processor = self.processors[column]
        return processor(value) if processor is not None else value


_SHAPES: dict[tuple[str, str, str], _Shape] = {}


def _shape(dialect: Dialect, table: str) -> _Shape:
    # Keyed by the dialect's kind, not its instance: every Ledger has a dialect of its own.
    key = (dialect.name, dialect.driver, table)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = _Shape(dialect, Base.metadata.tables[table])
    return shape
