"""The spool: where the ledger's writes wait, on local disk, while the database is unreachable.

Each entry is one flush of the writer (decisions with what they traded, closes, snapshots,
outcomes, engine events), in order. When the database is back the whole spool lands in one
transaction that also records, as a `LEDGER_SPOOL_DRAINED` engine event, the spool's id and the
last entry it held; the entries are deleted only after that commit. A crash between the two
leaves entries that the next drain skips by that event: every entry lands once.

The file is SQLite (synchronous FULL: an entry acknowledged is on disk) and is read and written
only by the ledger's writer thread. Its entries are pickles of Helios's own records, written and
read by this process's code only.
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from helios_core.errors import HeliosError
from helios_live.ledger.records import Outcome, Unit

log = logging.getLogger("helios.live")
DRAINED = "LEDGER_SPOOL_DRAINED"


@dataclass(frozen=True, slots=True)
class Event:
    """An engine event, as `Ledger.record_event` takes it."""

    kind: str
    at: datetime
    detail: dict[str, Any]
    pair: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One flush that could not reach the database."""

    units: tuple[Unit, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def decisions(self) -> int:
        return sum(len(u.predictions) for u in self.units)


class SpoolError(HeliosError):
    """The spool itself cannot be written (a full or read-only disk)."""


class Spool:
    """A bounded spool at `path`: `capacity` decisions, beyond which entries must stop."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.path, self.capacity = path, capacity
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                # AUTOINCREMENT: a sequence number is never reused, even once the table is empty,
                # or the ledger's marker of an earlier landing would skip the next outage's entries.
                "CREATE TABLE IF NOT EXISTS entries"
                " (seq INTEGER PRIMARY KEY AUTOINCREMENT, decisions INTEGER, payload BLOB)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (id TEXT)")
            row = self._db.execute("SELECT id FROM meta").fetchone()
            if row is None:
                self.id = uuid.uuid4().hex
                self._db.execute("INSERT INTO meta VALUES (?)", (self.id,))
            else:
                self.id = row[0]
            self.entries, self.decisions = self._count()
        except sqlite3.Error as exc:
            raise SpoolError(f"ledger spool {path} cannot be opened: {exc}") from exc

    def _count(self) -> tuple[int, int]:
        entries, decisions = self._db.execute("SELECT count(*), coalesce(sum(decisions), 0) FROM entries").fetchone()
        return int(entries), int(decisions)

    @property
    def full(self) -> bool:
        return bool(self.decisions >= self.capacity)

    def append(self, entry: Entry) -> None:
        try:
            self._db.execute(
                "INSERT INTO entries (decisions, payload) VALUES (?, ?)", (entry.decisions, pickle.dumps(entry))
            )
        except sqlite3.Error as exc:
            raise SpoolError(f"ledger spool {self.path} cannot be written: {exc}") from exc
        self.entries += 1
        self.decisions += entry.decisions

    def read(self, after: int) -> list[tuple[int, Entry]]:
        """The entries after sequence number `after`, in order."""
        rows = self._db.execute("SELECT seq, payload FROM entries WHERE seq > ? ORDER BY seq", (after,))
        out = []
        for seq, payload in rows:
            try:
                entry = pickle.loads(payload)  # noqa: S301 -- our own file
            except Exception as exc:  # written by a version whose records differ from this one's
                raise SpoolError(
                    f"ledger spool {self.path}: entry {seq} cannot be read by this version of Helios ({exc});"
                    " its writes are not in the ledger: moving the file aside lets the service start without them"
                ) from exc
            if not isinstance(entry, Entry):
                raise SpoolError(f"ledger spool {self.path}: entry {seq} is not a spool entry")
            out.append((seq, entry))
        return out

    def remove(self, through: int) -> None:
        """Forget the entries up to `through`: they are in the ledger."""
        self._db.execute("DELETE FROM entries WHERE seq <= ?", (through,))
        self.entries, self.decisions = self._count()

    def close(self) -> None:
        self._db.close()
