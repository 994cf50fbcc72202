"""The ledger: where the live service writes its decisions, outcomes and events, on SQLite or PostgreSQL.

Synchronous on purpose: the engine calls it from one writer thread, so the event loop never
waits on the database and writes keep their order.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Select, case, create_engine, event, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from helios_core.errors import HeliosError
from helios_live.ledger.models import (
    Base,
    DecisionStep,
    EngineEvent,
    Outcome,
    Page,
    Prediction,
    PredictionRecord,
    require_aware,
)

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_LIMIT = 1000
BACKENDS = ("sqlite", "postgresql")
PG_UNDEFINED_TABLE = "42P01"
PROBABILITIES = {"p_buy": "BUY", "p_sell": "SELL", "p_hold": "HOLD"}

Due = tuple[int, datetime, float, datetime]


class LedgerError(HeliosError):
    """The ledger database is unreachable or its schema is missing (run `migrate`)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the engine writes; NORMAL is durable enough under WAL and
    # far faster; SQLite leaves foreign keys (and so ON DELETE CASCADE) off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode("ascii")).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The last id of the previous page; ValueError("invalid cursor") for anything we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except ValueError as exc:  # binascii.Error and UnicodeError are both ValueErrors
        raise ValueError("invalid cursor") from exc
    # At most 19 digits: ids are BIGINTs, and a huge number must not reach the database.
    if not (raw.isdigit() and len(raw) <= 19) or int(raw) <= 0 or encode_cursor(int(raw)) != cursor:
        raise ValueError("invalid cursor")
    return int(raw)


def _check_page(cursor: str | None, limit: int) -> int | None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return None if cursor is None else decode_cursor(cursor)


class Ledger:
    """The ledger on one database URL (sqlite:///... or postgresql://...); `url` keeps no password."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise LedgerError("the ledger URL is not a valid database URL") from exc
        self.url = parsed.render_as_string(hide_password=True)
        backend = parsed.get_backend_name()
        if backend not in BACKENDS:
            raise LedgerError(f"{self.url}: the ledger runs on {' or '.join(BACKENDS)}, not {backend}")
        if backend == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = create_engine(parsed)
            event.listen(self._engine, "connect", _sqlite_pragmas)
        else:
            connect_args: dict[str, Any] = {}
            if parsed.get_driver_name() == "psycopg2" and "connect_timeout" not in parsed.query:
                # libpq otherwise waits on an unanswered host for as long as the OS lets it.
                connect_args["connect_timeout"] = 10
            self._engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise self._error(exc) from exc
        except ProgrammingError as exc:
            if getattr(exc.orig, "pgcode", None) != PG_UNDEFINED_TABLE:
                raise
            raise self._error(exc) from exc

    def _error(self, exc: OperationalError | ProgrammingError) -> LedgerError:
        detail = str(exc.orig).strip().partition("\n")[0]
        if "no such table" in detail or getattr(exc.orig, "pgcode", None) == PG_UNDEFINED_TABLE:
            return LedgerError(f"ledger {self.url} has no schema (run migrate): {detail}")
        return LedgerError(f"ledger {self.url} is unreachable: {detail}")

    def migrate(self) -> None:
        """Bring the schema to the newest migration; a no-op when it already is there."""
        with self._begin() as connection:
            config = Config()
            # Config values go through configparser interpolation: a '%' in the path must be doubled.
            config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> bool:
        """Whether the database answers; never raises, for health checks."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 -- any failure at all means "not reachable" to a health check
            return False
        return True

    def add_predictions(self, records: Sequence[PredictionRecord]) -> list[int | None]:
        """Store decisions in one transaction: their ids, None for one already stored.

        A decision is identified by (pair, candle_ts, model_version), so re-processing a candle
        after a restart stores nothing twice.
        """
        if not records:
            return []
        keys = [(r.pair, r.candle_ts, r.model_version) for r in records]
        with self._begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            # One multi-row statement and one for all steps: per-statement overhead, not the
            # database, dominates a ten-pair minute (benchmarks/bench_stream.py).
            table = Base.metadata.tables["predictions"]
            statement = (
                dialect.insert(table)
                .on_conflict_do_nothing(index_elements=["pair", "candle_ts", "model_version"])
                .returning(table.c.id, table.c.pair, table.c.candle_ts, table.c.model_version)
            )
            rows = connection.execute(statement, [_prediction_row(r) for r in records])
            inserted = {(pair, ts, version): row_id for row_id, pair, ts, version in rows}
            ids = [inserted.get(key) for key in keys]
            steps = [
                {"prediction_id": row_id, "position": i, **asdict(step)}
                for record, row_id in zip(records, ids, strict=True)
                if row_id is not None
                for i, step in enumerate(record.steps)
            ]
            if steps:
                connection.execute(insert(Base.metadata.tables["decision_steps"]), steps)
        return ids

    def record_event(
        self, kind: str, at: datetime, detail: Mapping[str, Any] | None = None, pair: str | None = None
    ) -> int:
        """Store an engine event (start, stop, emergency stop...); returns its id."""
        require_aware("at", at)
        values = {"at": at, "kind": kind, "pair": pair, "detail": dict(detail or {})}
        with self._begin() as connection:
            return connection.execute(insert(EngineEvent).values(**values).returning(EngineEvent.id)).scalar_one()

    def due_outcomes(self, pair: str, until: datetime) -> list[Due]:
        """Predictions of `pair` without an outcome whose horizon has passed by `until`, oldest first."""
        require_aware("until", until)
        return self._unscored(pair, Prediction.outcome_due <= until)

    def pending_outcomes(self, pair: str) -> list[Due]:
        """Every prediction of `pair` still without an outcome, oldest first (restart recovery)."""
        return self._unscored(pair)

    def _unscored(self, pair: str, *conditions: Any) -> list[Due]:
        query = (
            select(Prediction.id, Prediction.candle_ts, Prediction.entry_price, Prediction.outcome_due)
            .where(Prediction.pair == pair, Prediction.actual_outcome.is_(None), *conditions)
            .order_by(Prediction.candle_ts, Prediction.id)
        )
        with self._begin() as connection:
            return list(connection.execute(query).tuples())

    def fill_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        """Score predictions; one that already has an outcome keeps it. Returns the rows updated."""
        updated = 0
        with self._begin() as connection:
            for outcome in outcomes:
                statement = (
                    update(Prediction)
                    .where(Prediction.id == outcome.prediction_id, Prediction.actual_outcome.is_(None))
                    .values(
                        actual_outcome=outcome.actual_outcome,
                        outcome_return=outcome.outcome_return,
                        correct=Prediction.prediction == outcome.actual_outcome,
                    )
                )
                updated += connection.execute(statement).rowcount
        return updated

    def predictions(
        self,
        *,
        pair: str | None = None,
        model_version: str | None = None,
        prediction: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A page of predictions, newest first, each with its decision steps.

        `since` is inclusive and `until` exclusive, both on the candle's open time.
        """
        after = _check_page(cursor, limit)
        query = select(Prediction)
        for column, value in ((Prediction.pair, pair), (Prediction.model_version, model_version)):
            if value is not None:
                query = query.where(column == value)
        if prediction is not None:
            query = query.where(Prediction.prediction == prediction)
        if since is not None:
            require_aware("since", since)
            query = query.where(Prediction.candle_ts >= since)
        if until is not None:
            require_aware("until", until)
            query = query.where(Prediction.candle_ts < until)
        with self._begin() as connection:
            rows, next_cursor = _page(connection, query, Prediction.id, after, limit)
            steps: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
            step_query = (
                select(DecisionStep.prediction_id, DecisionStep.step, DecisionStep.approved, DecisionStep.reason)
                .where(DecisionStep.prediction_id.in_(steps))
                .order_by(DecisionStep.prediction_id, DecisionStep.position)
            )
            # One query for the whole page's steps, not one per prediction.
            for prediction_id, step, approved, reason in connection.execute(step_query) if steps else []:
                steps[prediction_id].append({"step": step, "approved": approved, "reason": reason})
        return Page([_prediction_item(row, steps[row.id]) for row in rows], next_cursor)

    def events(self, *, kind: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        """A page of engine events, newest first."""
        after = _check_page(cursor, limit)
        query = select(EngineEvent)
        if kind is not None:
            query = query.where(EngineEvent.kind == kind)
        with self._begin() as connection:
            rows, next_cursor = _page(connection, query, EngineEvent.id, after, limit)
        items = [{"id": r.id, "at": r.at, "kind": r.kind, "pair": r.pair, "detail": r.detail} for r in rows]
        return Page(items, next_cursor)

    def prediction_counts(self) -> dict[str, int]:
        """How many predictions there are, how many were scored and how many of those were right."""
        query = select(
            func.count(Prediction.id),
            func.count(Prediction.actual_outcome),
            func.coalesce(func.sum(case((Prediction.correct.is_(True), 1), else_=0)), 0),
        )
        with self._begin() as connection:
            total, with_outcome, correct = connection.execute(query).one()
        return {"total": int(total), "with_outcome": int(with_outcome), "correct": int(correct)}

    def close(self) -> None:
        self._engine.dispose()


def _page(
    connection: Connection, query: Select[Any], id_column: Any, after: int | None, limit: int
) -> tuple[list[Any], str | None]:
    # Keyset pagination on the id: stable while new rows arrive, and cheap at any depth.
    if after is not None:
        query = query.where(id_column < after)
    rows = list(connection.execute(query.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1].id)


def _prediction_row(record: PredictionRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name != "steps"}


def _prediction_item(row: Any, steps: list[dict[str, Any]]) -> dict[str, Any]:
    item = {key: value for key, value in row._mapping.items() if key not in PROBABILITIES}
    item["probabilities"] = {label: getattr(row, column) for column, label in PROBABILITIES.items()}
    item["steps"] = steps
    return item
