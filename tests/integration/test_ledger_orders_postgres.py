"""The order journal and the reconciliation record on PostgreSQL, in a database of their own:
the same checks as on SQLite, the row lock on the journal, and migration 0004 down and up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from helios_live.ledger import Ledger, LedgerError
from helios_live.ledger.models import Base
from tests.ledger_support import schema_differences, temporary_database
from tests.unit.live.test_ledger_llm import alembic, tables
from tests.unit.live.test_ledger_orders import CHECKS, TABLES, intent, step

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_orders") as url:
        yield url


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(database_url)
    ledger.migrate()
    yield ledger
    ledger.close()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(Base.metadata.tables)} RESTART IDENTITY"))
    engine.dispose()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_on_postgresql(ledger: Ledger, check: Any) -> None:
    check(ledger)


def test_an_intent_and_its_transitions_on_postgresql(ledger: Ledger, database_url: str) -> None:
    ledger.record_intent(intent("hx-pg"))
    ledger.record_transitions(
        [
            step("hx-pg", "ACCEPTED", 1, venue_order_id="0195a6c3-1f2e-7d4b-9c8a-" + "f" * 12),
            step("hx-pg", "FILLED", 2, filled_quantity=0.0004, average_price=1_234_567.89, fee=0.49),
        ]
    )

    entry = ledger.journal_entry("hx-pg")
    assert entry is not None and entry.status == "FILLED" and entry.intent == intent("hx-pg")
    assert ledger.unfinished_orders() == [] and schema_differences(database_url) == []


def test_the_migration_goes_down_and_up_again_on_postgresql(ledger: Ledger, database_url: str) -> None:
    ledger.record_intent(intent())
    ledger.record_reconciliation(intent().created_at, [{"kind": "balance"}])

    alembic(database_url, "downgrade", "0003")
    down = tables(database_url)
    with pytest.raises(LedgerError, match="run migrate"):
        ledger.unfinished_orders()
    alembic(database_url, "upgrade", "head")

    assert not set(TABLES) & down and {"llm_decisions", "orders"} <= down
    assert set(TABLES) <= tables(database_url) and schema_differences(database_url) == []
    assert ledger.journal_entry("hx-1") is None and ledger.open_reconciliation() is None
