"""The ledger: where the live service writes its decisions, outcomes, trades and events, on SQLite
or PostgreSQL.

Synchronous on purpose: the engine calls it from one writer thread, so the event loop never
waits on the database and writes keep their order.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Select, case, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from helios_core.allocation.targets import Targets
from helios_core.errors import HeliosError
from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import TradingMode
from helios_core.trading.orders import require_aware
from helios_core.trading.position import Execution, Position
from helios_live.ledger import alerts, allocation, audit, llm, orders, surveillance, trading
from helios_live.ledger.models import (
    AlertDeliveryRow,
    AllocationTargetRow,
    ApiAuditRow,
    DecisionStepRow,
    EngineEventRow,
    FillRow,
    LiquidationPatternRow,
    LlmDecisionRow,
    ModeChangeRow,
    OracleDeviationRow,
    OrderJournalRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    PredictionRow,
    RebalancingEventRow,
    ReconciliationRow,
    RiskDecisionRow,
    SecurityEventRow,
    VaultSnapshotRow,
)
from helios_live.ledger.orders import JournalEntry, OrderIntentRecord, OrderTransitionRecord
from helios_live.ledger.records import PAGE_MAX, DecisionRef, ModeRecord, Outcome, Page, PredictionRecord, Unit
from helios_live.ledger.spool import DRAINED, Event

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_LIMIT = PAGE_MAX
BACKENDS = ("sqlite", "postgresql")
PG_UNDEFINED_TABLE = "42P01"
PROBABILITIES = {"p_buy": "BUY", "p_sell": "SELL", "p_hold": "HOLD"}

Due = tuple[int, datetime, float, datetime]


class LedgerError(HeliosError):
    """The ledger database is unreachable or its schema is missing (run `migrate`)."""


class LedgerConflict(LedgerError):
    """A write would break the ledger's invariants (an order id or position key stored twice, a
    close of a position that is not open) or its data does not fit the schema (a value too long);
    the whole transaction was rolled back. The same write would be refused again."""


class UnknownOrder(LedgerConflict):
    """A transition names a client order id the order journal has no intent for."""


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
    # Ids are BIGINTs: a number outside 1..2**63-1 must not reach the database (SQLite overflows, a
    # 500). The length check first spares parsing a huge one.
    if not (raw.isdigit() and len(raw) <= 19 and 0 < int(raw) < 2**63) or encode_cursor(int(raw)) != cursor:
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
        self._files: tuple[Path, ...] = ()
        if backend == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                self._files = tuple(Path(database + suffix) for suffix in ("", "-wal", "-shm"))
            self._engine = create_engine(parsed)
            event.listen(self._engine, "connect", _sqlite_pragmas)
        else:
            connect_args: dict[str, Any] = {}
            if parsed.get_driver_name() == "psycopg2" and "connect_timeout" not in parsed.query:
                # libpq otherwise waits on an unanswered host for as long as the OS lets it.
                connect_args["connect_timeout"] = 10
            self._engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)

    def _writable(self) -> None:
        """SQLite maps its -shm file into memory: touching it once it cannot be written (made
        immutable, a read-only remount) kills the process with SIGBUS before any error can be
        raised. So every transaction first asks the OS whether the files are still writable."""
        for path in self._files:
            if not os.access(path, os.W_OK) and path.exists():
                raise LedgerError(f"ledger {self.url}: {path.name} is not writable")

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        self._writable()
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise self._error(exc) from exc
        except (IntegrityError, DataError) as exc:  # the data, not the database: never worth a retry
            detail = str(exc.orig).strip().partition("\n")[0]
            raise LedgerConflict(f"ledger {self.url} refused the write, nothing of it was stored: {detail}") from exc
        except ProgrammingError as exc:
            if getattr(exc.orig, "pgcode", None) != PG_UNDEFINED_TABLE:
                raise
            raise self._error(exc) from exc
        except (DatabaseError, InterfaceError) as exc:  # a corrupt file, a dropped connection: never a bare traceback
            raise self._error(exc) from exc

    def _error(self, exc: DatabaseError | InterfaceError) -> LedgerError:
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
            self._writable()
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 -- any failure at all means "not reachable" to a health check
            return False
        return True

    def add_predictions(self, records: Sequence[PredictionRecord]) -> list[int | None]:
        """Store decisions in one transaction: their ids, None for one already stored.

        A decision is identified by (pair, candle_ts, model_version), so re-processing a candle
        after a restart stores nothing twice, its risk decision, check and trade included.
        """
        return self.write(predictions=records)

    def write(
        self,
        predictions: Sequence[PredictionRecord] = (),
        closes: Sequence[Execution] = (),
        snapshots: Sequence[PortfolioSnapshot] = (),
        opens: Sequence[tuple[DecisionRef | None, Execution]] = (),
    ) -> list[int | None]:
        """Store decisions (as `add_predictions`), opens and closes, and snapshots in one
        transaction (one unit, see `write_units`); the predictions' ids, None for one already stored."""
        if not (predictions or closes or snapshots or opens):
            return []
        return self.write_units([Unit(tuple(predictions), tuple(closes), tuple(snapshots), tuple(opens))])[0]

    def write_units(self, units: Sequence[Unit]) -> list[list[int | None]]:
        """Store units in one transaction (see `commit`); each unit's prediction ids."""
        return self.commit(units)[0]

    def commit(
        self, units: Sequence[Unit], outcomes: Sequence[Outcome] = (), events: Sequence[Event] = ()
    ) -> tuple[list[list[int | None]], list[int | None]]:
        """Store units, score outcomes and record engine events in one transaction, each
        table's rows in the units' order, the outcomes after the units (so they may name the
        units' decisions by key).

        A decision stores the position it opened with it. A unit's `opens` are positions opened
        by fills that came after their decision (an exchange's later fill), each with that
        decision (or None), which may be in the same call. A close stores its order and fills and
        brings its position to the execution's state; a close of a position that is not open
        raises LedgerConflict and stores nothing of the call. Returns each unit's prediction ids,
        None for one already stored, and for each outcome the id of the prediction it scored
        (None: none; one already scored keeps its outcome).
        """
        with self._begin() as connection:
            try:
                return trading.write_units(connection, units, outcomes, events)
            except trading.Refused as exc:
                raise LedgerConflict(
                    f"ledger {self.url}: cannot close {', '.join(exc.keys)}: no such open position"
                ) from None

    def record_event(
        self, kind: str, at: datetime, detail: Mapping[str, Any] | None = None, pair: str | None = None
    ) -> int:
        """Store an engine event (start, stop, emergency stop...); returns its id."""
        require_aware("at", at)
        values = {"at": at, "kind": kind, "pair": pair, "detail": dict(detail or {})}
        with self._begin() as connection:
            return connection.execute(insert(EngineEventRow).values(**values).returning(EngineEventRow.id)).scalar_one()

    def spooled_through(self, spool: str) -> tuple[int, int]:
        """How far spool `spool` is in the ledger: its last entry landed whole (0: none), and how
        many units of the entry after it (an entry landed unit by unit when one was refused)."""
        query = select(EngineEventRow.detail).where(EngineEventRow.kind == DRAINED).order_by(EngineEventRow.id)
        with self._begin() as connection:
            drained = [d for (d,) in connection.execute(query) if d.get("spool") == spool]
        if not drained:
            return 0, 0
        return int(drained[-1]["through"]), int(drained[-1].get("units", 0))

    def due_outcomes(self, pair: str, until: datetime) -> list[Due]:
        """Predictions of `pair` without an outcome whose horizon has passed by `until`, oldest first."""
        require_aware("until", until)
        return self._unscored(pair, PredictionRow.outcome_due <= until)

    def pending_outcomes(self, pair: str) -> list[Due]:
        """Every prediction of `pair` still without an outcome, oldest first (restart recovery)."""
        return self._unscored(pair)

    def _unscored(self, pair: str, *conditions: Any) -> list[Due]:
        query = (
            select(PredictionRow.id, PredictionRow.candle_ts, PredictionRow.entry_price, PredictionRow.outcome_due)
            .where(PredictionRow.pair == pair, PredictionRow.actual_outcome.is_(None), *conditions)
            .order_by(PredictionRow.candle_ts, PredictionRow.id)
        )
        with self._begin() as connection:
            return list(connection.execute(query).tuples())

    def fill_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        """Score predictions; one that already has an outcome keeps it. Returns the rows updated."""
        return sum(row is not None for row in self.commit((), outcomes)[1])

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
        query = select(PredictionRow)
        for column, value in ((PredictionRow.pair, pair), (PredictionRow.model_version, model_version)):
            if value is not None:
                query = query.where(column == value)
        if prediction is not None:
            query = query.where(PredictionRow.prediction == prediction)
        if since is not None:
            require_aware("since", since)
            query = query.where(PredictionRow.candle_ts >= since)
        if until is not None:
            require_aware("until", until)
            query = query.where(PredictionRow.candle_ts < until)
        with self._begin() as connection:
            rows, next_cursor = _page(connection, query, PredictionRow.id, after, limit)
            steps: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
            step_query = (
                select(
                    DecisionStepRow.prediction_id,
                    DecisionStepRow.step,
                    DecisionStepRow.approved,
                    DecisionStepRow.reason,
                )
                .where(DecisionStepRow.prediction_id.in_(steps))
                .order_by(DecisionStepRow.prediction_id, DecisionStepRow.position)
            )
            # One query for the whole page's steps, not one per prediction.
            for prediction_id, step, approved, reason in connection.execute(step_query) if steps else []:
                steps[prediction_id].append({"step": step, "approved": approved, "reason": reason})
        return Page([_prediction_item(row, steps[row.id]) for row in rows], next_cursor)

    def events(self, *, kind: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        """A page of engine events, newest first."""
        after = _check_page(cursor, limit)
        query = select(EngineEventRow)
        if kind is not None:
            query = query.where(EngineEventRow.kind == kind)
        with self._begin() as connection:
            rows, next_cursor = _page(connection, query, EngineEventRow.id, after, limit)
        items = [{"id": r.id, "at": r.at, "kind": r.kind, "pair": r.pair, "detail": r.detail} for r in rows]
        return Page(items, next_cursor)

    def record_mode(self, record: ModeRecord) -> int:
        """Store a switch between PAPER and LIVE; returns its id."""
        with self._begin() as connection:
            return connection.execute(
                insert(ModeChangeRow).values(**asdict(record)).returning(ModeChangeRow.id)
            ).scalar_one()

    def mode(self) -> TradingMode:
        """The mode the latest change switched to; PAPER before the first."""
        with self._begin() as connection:
            return trading.mode(connection)

    def open_positions(self) -> list[Position]:
        """Every open position, oldest first (restart recovery)."""
        with self._begin() as connection:
            return trading.open_positions(connection)

    def closed_positions(self) -> list[Position]:
        """Every closed position, in the order they closed."""
        with self._begin() as connection:
            return trading.closed_positions(connection)

    def equity_curve(self) -> list[tuple[datetime, float]]:
        """(time, equity) of every portfolio snapshot, in time order."""
        query = select(PortfolioSnapshotRow.at, PortfolioSnapshotRow.equity).order_by(
            PortfolioSnapshotRow.at, PortfolioSnapshotRow.id
        )
        with self._begin() as connection:
            return [(r[0], float(r[1])) for r in connection.execute(query)]

    def scored(self) -> list[tuple[str, datetime, str, float, bool]]:
        """(pair, candle open time, prediction, confidence, correct) of every prediction whose
        outcome is known, in candle order: what a calibration is measured on."""
        p = PredictionRow
        query = (
            select(p.pair, p.candle_ts, p.prediction, p.confidence, p.correct)
            .where(p.correct.is_not(None))
            .order_by(p.candle_ts, p.pair, p.id)
        )
        with self._begin() as connection:
            return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in connection.execute(query)]

    def account(self) -> dict[str, float]:
        """`realised` P&L of closed positions (net of fees), `open_entry_fees`, `closed` count."""
        with self._begin() as connection:
            return trading.account(connection)

    def latest_snapshot(self) -> PortfolioSnapshot | None:
        """The newest portfolio snapshot by its time, or None before the first."""
        with self._begin() as connection:
            return trading.latest_snapshot(connection)

    def decided_until(self, pair: str) -> datetime | None:
        """The open time of the newest candle a prediction of `pair` was stored for."""
        with self._begin() as connection:
            return trading.decided_until(connection, pair)

    def positions(
        self, *, status: str | None = None, pair: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of positions, newest first, each with the Tier 4 decision of the prediction
        that opened it: `llm_decision_id`, `llm_verdict` and `explanation` (None without one)."""
        return self._rows(trading.positions_query(status, pair), PositionRow.id, cursor, limit, trading.position_item)

    def position(self, position_id: int) -> dict[str, Any] | None:
        """One position by id, or None."""
        with self._begin() as connection:
            row = connection.execute(trading.positions_query(None, None).where(PositionRow.id == position_id)).first()
        return None if row is None else trading.position_item(row)

    def orders(
        self, *, pair: str | None = None, position_key: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of orders, newest first."""
        return self._rows(trading.orders_query(pair, position_key), OrderRow.id, cursor, limit)

    def fills(self, *, pair: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        """A page of fills, newest first, each with its order's pair, side, purpose and position key."""
        return self._rows(trading.fills_query(pair), FillRow.id, cursor, limit)

    def risk_decisions(
        self, *, pair: str | None = None, approved: bool | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of risk decisions, newest first, with their candle's open time and their
        portfolio check (`check`, None where sizing denied the trade)."""
        return self._rows(trading.risk_query(pair, approved), RiskDecisionRow.id, cursor, limit, trading.risk_item)

    def snapshots(self, *, since: datetime | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        """A page of portfolio snapshots, newest first; `since` is inclusive."""
        return self._rows(trading.snapshots_query(since), PortfolioSnapshotRow.id, cursor, limit)

    def llm_decisions(
        self,
        *,
        pair: str | None = None,
        verdict: str | None = None,
        source: str | None = None,
        approver: str | None = None,
        failed: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A page of Tier 4 decisions, newest first: every column (the clamps a list, the answer
        a dict or None) with the candle's open time; `failed` keeps those the failure policy
        decided (True) or those with an answer (False). The context is in `llm_decision`."""
        query = llm.decisions_query(pair, verdict, source, approver, failed)
        return self._rows(query, LlmDecisionRow.id, cursor, limit, llm.decision_item)

    def llm_decision(self, decision_id: int) -> dict[str, Any] | None:
        """One Tier 4 decision as in `llm_decisions`, with the market context its approver read
        (`context`, decoded), or None."""
        with self._begin() as connection:
            return llm.decision(connection, decision_id)

    def llm_answers(self, model_id: str | None = None) -> dict[str, str]:
        """Replay key -> answer JSON of every answer a model gave (source "llm"), of `model_id`
        only when given, the latest per key: what a `recorded` approver replays."""
        with self._begin() as connection:
            return llm.answers(connection, model_id)

    def llm_spend(self, since: datetime) -> float:
        """What Tier 4 cost (USD) on decisions taken at or after `since`: today's spend after a restart."""
        with self._begin() as connection:
            return llm.spend(connection, since)

    # --- the order journal and reconciliations (orders.py) ---------------------------------------

    def record_intent(self, intent: OrderIntentRecord) -> None:
        """Journal an order before its request is sent: its row, NEW, with a NEW transition, in
        one transaction. A client order id journalled before raises LedgerConflict."""
        with self._begin() as connection:
            orders.insert_intent(connection, intent)

    def record_intents(self, intents: Sequence[OrderIntentRecord]) -> None:
        """`record_intent` for several orders in one transaction: all are journalled or none."""
        with self._begin() as connection:
            for intent in intents:
                orders.insert_intent(connection, intent)

    def record_transitions(self, transitions: Sequence[OrderTransitionRecord]) -> None:
        """Record transitions and bring each order's journal row to where it stands, in one
        transaction; an order in a terminal status keeps it (see `orders.apply_transitions`).
        A transition of an order never journalled raises UnknownOrder and stores nothing."""
        with self._begin() as connection:
            try:
                orders.apply_transitions(connection, transitions)
            except orders.UnknownOrders as exc:
                raise UnknownOrder(
                    f"ledger {self.url}: no journalled order {', '.join(map(repr, exc.ids))}: transitions not stored"
                ) from None

    def unfinished_orders(self, mode: str | None = None) -> list[JournalEntry]:
        """Journalled orders not in a terminal status (of `mode` only when given), oldest first:
        what a restart must settle with the exchange."""
        with self._begin() as connection:
            return orders.unfinished(connection, mode)

    def journal_entry(self, client_order_id: str) -> JournalEntry | None:
        with self._begin() as connection:
            return orders.journal_entry(connection, client_order_id)

    def order_journal(
        self, *, pair: str | None = None, status: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of journalled orders, newest first: the intent's columns and where it stands."""
        return self._rows(orders.journal_query(pair, status), OrderJournalRow.id, cursor, limit)

    def order_journal_item(self, client_order_id: str) -> dict[str, Any] | None:
        """One journalled order as in `order_journal`, with its `transitions` in order, or None."""
        with self._begin() as connection:
            return orders.journal_item(connection, client_order_id)

    def order_transitions(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every transition of an order, in the order they were recorded."""
        with self._begin() as connection:
            return orders.transitions(connection, client_order_id)

    def record_reconciliation(self, at: datetime, mismatches: list[dict[str, Any]]) -> int:
        """Store a reconciliation run (ok when it found no mismatches); returns its id."""
        with self._begin() as connection:
            return orders.insert_reconciliation(connection, at, mismatches)

    def acknowledge_reconciliation(self, rec_id: int, by: str, at: datetime, note: str) -> bool:
        """An operator's acknowledgement of a run; False when there is no such run or it already was."""
        with self._begin() as connection:
            return orders.acknowledge(connection, rec_id, by, at, note)

    def open_reconciliation(self) -> dict[str, Any] | None:
        """The latest run when it found mismatches nobody acknowledged; None when the latest run
        was ok or acknowledged (or there was none)."""
        with self._begin() as connection:
            return orders.open_reconciliation(connection)

    def reconciliations(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """A page of reconciliation runs, newest first."""
        return self._rows(orders.reconciliations_query(), ReconciliationRow.id, cursor, limit)

    # surveillance (ledger/surveillance.py) ----------------------------------------------
    def record_surveillance(self, rows: Sequence[surveillance.Row]) -> int:
        """Store surveillance rows in one transaction; replaying them changes nothing."""
        with self._begin() as connection:
            return surveillance.write(connection, rows)

    def security_events(
        self,
        *,
        severity: str | None = None,
        type: str | None = None,
        asset: str | None = None,
        since: datetime | None = None,
        active: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A page of security events, newest first, every filter applied before the limit."""
        query = surveillance.events_query(severity, type, asset, since, active)
        return self._rows(query, SecurityEventRow.id, cursor, limit)

    def oracle_deviations(
        self, *, asset: str | None = None, since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        return self._rows(surveillance.deviations_query(asset, since), OracleDeviationRow.id, cursor, limit)

    def liquidation_patterns(self, *, pattern: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        return self._rows(surveillance.patterns_query(pattern), LiquidationPatternRow.id, cursor, limit)

    def vault_snapshots(self, *, vault: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        return self._rows(surveillance.vault_query(vault), VaultSnapshotRow.id, cursor, limit)

    def surveillance_between(self, table: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every row of a surveillance table (`surveillance.TABLES`) with start <= ts < end, in
        the order they were written: the batch side's input."""
        require_aware("start", start)
        require_aware("end", end)
        with self._begin() as connection:
            rows = connection.execute(surveillance.between(surveillance.TABLES[table], start, end))
            return [dict(r._mapping) for r in rows]

    def surveillance_state(self) -> dict[str, list[dict[str, Any]]]:
        """The newest deviation per (venue, asset), the newest snapshot per vault, and the active events."""
        with self._begin() as connection:
            return {
                "deviations": surveillance.latest_deviations(connection),
                "vaults": surveillance.latest_vaults(connection),
                "events": surveillance.active_events(connection),
            }

    def prune_surveillance(self, before: datetime) -> dict[str, int]:
        """Delete surveillance rows older than `before`; how many per table."""
        require_aware("before", before)
        with self._begin() as connection:
            return surveillance.prune(connection, before)

    # alerts (ledger/alerts.py) ----------------------------------------------------------
    def record_alert_deliveries(self, deliveries: Sequence[alerts.AlertDelivery]) -> int:
        """Store alert deliveries in one transaction; how many."""
        with self._begin() as connection:
            return alerts.write(connection, deliveries)

    def alert_deliveries(
        self, *, rule: str | None = None, channel: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of alert deliveries, newest first."""
        return self._rows(alerts.deliveries_query(rule, channel), AlertDeliveryRow.id, cursor, limit)

    # allocation (ledger/allocation.py) --------------------------------------------------
    def record_targets(self, targets: Targets, source: str) -> int:
        """Store target weights (`source`: who computed them); the new row's id."""
        with self._begin() as connection:
            return allocation.write_targets(connection, targets, source)

    def latest_targets(self) -> Targets | None:
        found = self.latest_targets_row()
        return None if found is None else found[1]

    def latest_targets_row(self) -> tuple[int, Targets] | None:
        """The targets in force (those that read the newest data) with their row id."""
        with self._begin() as connection:
            return allocation.latest_targets(connection)

    def allocation_targets(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        return self._rows(allocation.targets_query(), AllocationTargetRow.id, cursor, limit)

    def record_rebalance(self, rebalance: allocation.Rebalance) -> None:
        """Store a rebalance; one already stored (same uid) is left as it is."""
        with self._begin() as connection:
            allocation.write_rebalance(connection, rebalance)

    def rebalances(self, *, reason: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
        return self._rows(allocation.rebalances_query(reason), RebalancingEventRow.id, cursor, limit)

    def trimmed(self) -> dict[str, tuple[float, float]]:
        """Per position, what its trims sold (quantity) and paid (fees)."""
        with self._begin() as connection:
            return allocation.trimmed(connection)

    def prediction_probabilities(self, since: datetime, until: datetime) -> list[tuple[str, float, float, float]]:
        """(pair, p_buy, p_sell, p_hold) of every decision on a candle in [since, until): views' input."""
        with self._begin() as connection:
            return allocation.probabilities(connection, since, until)

    # the API's audit (ledger/audit.py) ------------------------------------------------
    def record_audit(self, records: Sequence[audit.AuditRecord]) -> None:
        """Store audit records in one transaction."""
        with self._begin() as connection:
            audit.write(connection, records)

    def audit(
        self, *, kind: str | None = None, principal: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A page of the API's audit, newest first."""
        return self._rows(audit.query(kind, principal), ApiAuditRow.id, cursor, limit)

    def _rows(
        self,
        query: Select[Any],
        id_column: Any,
        cursor: str | None,
        limit: int,
        item: Callable[[Any], dict[str, Any]] = lambda row: dict(row._mapping),
    ) -> Page:
        after = _check_page(cursor, limit)
        with self._begin() as connection:
            rows, next_cursor = _page(connection, query, id_column, after, limit)
        return Page([item(row) for row in rows], next_cursor)

    def prediction_counts(self) -> dict[str, int]:
        """How many predictions there are, how many were scored and how many of those were right."""
        query = select(
            func.count(PredictionRow.id),
            func.count(PredictionRow.actual_outcome),
            func.coalesce(func.sum(case((PredictionRow.correct.is_(True), 1), else_=0)), 0),
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


def _prediction_item(row: Any, steps: list[dict[str, Any]]) -> dict[str, Any]:
    item = {key: value for key, value in row._mapping.items() if key not in PROBABILITIES}
    item["probabilities"] = {label: getattr(row, column) for column, label in PROBABILITIES.items()}
    item["steps"] = steps
    return item
