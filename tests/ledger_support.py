"""Ledger test helpers: a prediction record, the migrated-schema comparison, a throw-away
PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg2
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from helios_live.ledger import PredictionRecord, StepRecord
from helios_live.ledger.models import Base

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(
    pair: str = "BTCZAR", hour: int = 0, model: str = "m1", label: str = "BUY", steps: tuple[StepRecord, ...] = ()
) -> PredictionRecord:
    candle = T0 + hour * HOUR
    return PredictionRecord(
        pair=pair,
        candle_ts=candle,
        decided_at=candle + HOUR,
        model_version=model,
        feature_set_version="1.0.0",
        feature_hash="ab" * 32,
        prediction=label,
        p_buy=0.6,
        p_sell=0.3,
        p_hold=0.1,
        confidence=0.6,
        entry_price=100.0 + hour,
        outcome_due=candle + 5 * HOUR,
        steps=steps,
    )


def schema_differences(url: str) -> list[object]:
    """What `alembic upgrade head` built that the models do not say, and the reverse."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def _on_server(url: str, database: str) -> URL:
    # psycopg2 reads libpq URIs, which know no SQLAlchemy driver suffix.
    return make_url(url).set(drivername="postgresql", database=database)


@contextmanager
def temporary_database(server_url: str, prefix: str = "helios_test") -> Iterator[str]:
    """A new, uniquely named database on the server of `server_url`, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_on_server(server_url, "postgres").render_as_string(hide_password=False))
    admin.autocommit = True  # CREATE / DROP DATABASE cannot run inside a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        try:
            yield _on_server(server_url, name).render_as_string(hide_password=False)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()
