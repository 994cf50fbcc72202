"""Alembic environment for the ledger: runs on the connection `Ledger.migrate` passes in.

There is no alembic.ini and no offline mode: the ledger owns its URL, so the migrations
always run inside the transaction it opened.
"""

from alembic import context

from helios_live.ledger.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("ledger migrations run through helios_live.ledger.Ledger.migrate(), online only")

context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
