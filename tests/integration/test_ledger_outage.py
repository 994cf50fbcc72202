"""A PostgreSQL ledger that goes away mid-run loses nothing (BDD 51.11): the engine keeps
deciding and trading, its writes wait in the spool on disk, and when the database is back they
land in order, once. The connection is cut by a TCP proxy on loopback between the two."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from helios_live.kernel.status import spool_state
from helios_live.ledger import Ledger, LedgerConflict, trading
from helios_live.ledger.spool import DRAINED, Spool
from helios_live.ledger.writer import LedgerWriter
from tests.ledger_support import Proxy, record, temporary_database, traded
from tests.live_support import feed, start_trading, trading_kernel

pytestmark = pytest.mark.integration


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_outage") as url:
        yield url


def test_an_outage_mid_run_loses_nothing_and_lands_everything_once(database: str, tmp_path: Path) -> None:
    url = make_url(database)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)
    kernel, live = trading_kernel(tmp_path, spool=spool, database_url=proxied, risk_max_hold_s=300.0)

    async def run() -> tuple[int, int, int]:
        await start_trading(kernel, live, 30)
        before = kernel.states["BTCPERP"].predictions
        proxy.cut()
        await feed(kernel, live[30:70])  # 40 minutes without a database
        assert kernel.ledger_writer.health.failing > 0
        assert spool.entries > 0 and kernel.halted() == ""  # decisions go on, entries too
        waiting = spool_state(kernel)
        assert waiting is not None and waiting["decisions"] > 0 and not waiting["full"]
        during = kernel.states["BTCPERP"].predictions - before
        fills_during = sum(kernel.desk.fills.values())
        proxy.restore()
        await feed(kernel, live[70:90])  # the spool is retried every 30 s of the engine's time
        await kernel.close()
        return before, during, fills_during

    before, during, fills = asyncio.run(run())
    assert during == 40 and fills > 0  # a decision every minute while the database was away
    assert spool.entries == 0
    ledger = Ledger(database)
    predictions = sorted(ledger.predictions(limit=1000).items, key=lambda r: r["id"])
    times = [r["candle_ts"] for r in predictions]
    assert times == sorted(times) and len(set(times)) == len(times)  # in order, once
    assert len(predictions) == kernel.states["BTCPERP"].predictions
    # the trading the engine did is the trading the ledger shows
    positions = ledger.positions(limit=1000).items
    account = kernel.desk.account
    assert {p["key"] for p in positions if p["status"] == "OPEN"} == set(account.positions)
    assert ledger.account()["closed"] == sum(1 for p in positions if p["status"] == "CLOSED")
    drained = ledger.events(kind=DRAINED).items
    assert drained and drained[0]["detail"]["decisions"] >= 40
    kinds = {e["kind"] for e in ledger.events(limit=1000).items}
    assert "LEDGER_SPOOLING" in kinds  # the engine said so, and the event itself waited in the spool


def test_a_connection_dropped_inside_a_transaction_is_spooled(database: str, tmp_path: Path) -> None:
    """The server ends the session between two statements of a flush: the write waits in the
    spool (not lost as an unknown error), and the pool hands out a fresh connection after."""
    ledger = Ledger(database)
    ledger.migrate()
    name = make_url(database).database
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)
    insert = trading.insert_predictions

    def dropped(bulk: Any, records: Any) -> Any:
        admin = psycopg2.connect(make_url(database).set(database="postgres").render_as_string(hide_password=False))
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        admin.close()
        return insert(bulk, records)

    async def run() -> list[Any]:
        w = LedgerWriter(ledger, ThreadPoolExecutor(1), spool=spool)
        with patch.object(trading, "insert_predictions", dropped):
            first = await asyncio.wrap_future(w.submit(traded("BTCZAR", 1)))
        w._tried = None  # due at once
        second = await asyncio.wrap_future(w.submit(traded("ETHZAR", 2)))
        return [first, second]

    first, second = asyncio.run(run())
    assert first.spooled and spool.entries == 0  # landed at the next flush, on a new connection
    assert second.row is not None and not second.spooled  # then it went in, behind what had waited
    assert [p["pair"] for p in sorted(ledger.positions().items, key=lambda p: p["id"])] == ["BTCZAR", "ETHZAR"]


def test_a_write_the_database_refuses_is_not_spooled(database: str, tmp_path: Path) -> None:
    """A value too long is the data's fault: retrying it would block the spool for ever."""
    ledger = Ledger(database)
    ledger.migrate()
    spool = Spool(tmp_path / "spool.sqlite", capacity=1000)

    async def run() -> BaseException | None:
        w = LedgerWriter(ledger, ThreadPoolExecutor(1), spool=spool)
        try:
            await asyncio.wrap_future(w.submit(replace(record("BTCZAR", 0), model_version="m" * 81)))
        except LedgerConflict as exc:
            return exc
        return None

    assert isinstance(asyncio.run(run()), LedgerConflict)
    assert spool.entries == 0
