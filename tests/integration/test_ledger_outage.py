"""A PostgreSQL ledger that goes away mid-run loses nothing (BDD 51.11): the engine keeps
deciding and trading, its writes wait in the spool on disk, and when the database is back they
land in order, once. The connection is cut by a TCP proxy on loopback between the two."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from helios_live.kernel.status import spool_state
from helios_live.ledger import Ledger
from helios_live.ledger.spool import DRAINED, Spool
from tests.ledger_support import temporary_database
from tests.live_support import feed, start_trading, trading_kernel

pytestmark = pytest.mark.integration


class Proxy:
    """Forwards 127.0.0.1:<port> to the database; `cut()` drops every connection and refuses
    new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()  # refused: the database is "down"
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, server in pairs:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def restore(self) -> None:
        self.up = True


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
