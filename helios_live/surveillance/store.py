"""Where the monitors' rows go: the ledger, through a spool on local disk that keeps them while
the database is unreachable.

Every write is first appended to the spool (SQLite, synchronous FULL: acknowledged means on
disk), then the spool drains in order into the ledger, one entry per transaction, each entry
deleted after its commit. A crash between a commit and its delete replays that entry, which
changes nothing (every row has a uid; an event is overwritten whole): nothing is lost and
nothing is written twice. The source document's monitors dropped their rows while the
database was down. Used from one thread (the monitors' writer).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from helios_live.ledger import Ledger
from helios_live.ledger.store import LedgerError
from helios_live.ledger.surveillance import Row, clean

log = logging.getLogger("helios.surveillance")


class SurveillanceStore:
    def __init__(self, ledger: Ledger, spool: Path | None, capacity: int = 100_000) -> None:
        self.ledger = ledger
        self.capacity = capacity
        self.path = spool
        self.dropped = 0  # rows refused because the spool was full (or, without one, lost)
        self.written = 0
        self.error = ""  # the ledger's last error while it fails, else ""
        self._db: sqlite3.Connection | None = None
        if spool is not None:
            spool.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(spool, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, rows INTEGER, body TEXT)"
            )

    @property
    def pending(self) -> int:
        """Rows waiting in the spool."""
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COALESCE(SUM(rows), 0) FROM entries").fetchone()[0])

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            self.drain()
            return
        if self._db is None:
            try:
                self.written += self.ledger.record_surveillance(rows)
                self.error = ""
            except LedgerError as exc:
                self.dropped += len(rows)
                self.error = str(exc)
                log.warning("surveillance: %d rows lost, the ledger failed and there is no spool: %s", len(rows), exc)
            return
        if self.pending + len(rows) > self.capacity:
            self.dropped += len(rows)
            log.error("surveillance: spool full (%d rows): %d rows refused", self.capacity, len(rows))
        else:
            body = json.dumps([{"table": r.table, "values": clean(dict(r.values))} for r in rows])
            self._db.execute("INSERT INTO entries (rows, body) VALUES (?, ?)", (len(rows), body))
        self.drain()

    def drain(self) -> int:
        """Land the spool's entries in order until one fails; how many rows landed."""
        if self._db is None:
            return 0
        landed = 0
        for seq, body in self._db.execute("SELECT seq, body FROM entries ORDER BY seq").fetchall():
            rows = [Row(item["table"], item["values"]) for item in json.loads(body)]
            try:
                self.written += self.ledger.record_surveillance(rows)
            except LedgerError as exc:
                if not self.error:
                    log.warning("surveillance: ledger unreachable, rows wait in %s: %s", self.path, exc)
                self.error = str(exc)
                return landed
            self._db.execute("DELETE FROM entries WHERE seq = ?", (seq,))
            landed += len(rows)
        if self.error:
            log.info("surveillance: ledger reachable again, the spool has landed")
        self.error = ""
        return landed

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
