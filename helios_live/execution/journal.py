"""The order journal as execution clients see it: an order's intent is committed to the ledger
before its request leaves, and each of its transitions follows (docs/live-trading.md).

`LedgerJournal` writes on the ledger's writer thread, in group commits: the intents of the
decisions of one candle close (ten pairs deciding together) share one transaction, and the
transitions waiting share the next, so the journal costs one commit per burst, not one per
order. An intent does not wait for the decisions' own flush (it names no decision row). A
transition that cannot be written is counted and logged; the exchange still has the truth, and
reconciliation reads it back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from helios_core.trading.orders import OrderIntent
from helios_live.ledger import Ledger
from helios_live.ledger.orders import OrderIntentRecord, OrderTransitionRecord
from helios_live.ledger.store import LedgerConflict
from helios_live.ledger.writer import LedgerWriter

log = logging.getLogger("helios.execution")
Waiter = tuple[OrderIntentRecord, asyncio.Future[None], asyncio.AbstractEventLoop]


class Journal(Protocol):
    async def intent(self, record: OrderIntentRecord) -> None: ...

    def transition(self, record: OrderTransitionRecord) -> None: ...


def intent_record(
    intent: OrderIntent,
    quantity: float,
    request: dict[str, str],
    opening: dict[str, Any] | None,
    price: float | None = None,
    time_in_force: str | None = None,
) -> OrderIntentRecord:
    return OrderIntentRecord(
        client_order_id=intent.client_order_id,
        position_key=intent.position_key,
        pair=intent.pair,
        side=str(intent.side),
        purpose=str(intent.purpose),
        mode=str(intent.mode),
        order_type="MARKET" if price is None else "LIMIT",
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        request=request,
        opening=opening,
        reason=intent.reason,
        created_at=intent.created_at,
    )


class LedgerJournal:
    def __init__(self, writer: LedgerWriter, ledger: Ledger, errors: Counter[str]) -> None:
        self.writer, self.ledger, self.errors = writer, ledger, errors
        self._lock = threading.Lock()
        self._intents: list[Waiter] = []
        self._transitions: list[OrderTransitionRecord] = []
        self._queued = False

    async def intent(self, record: OrderIntentRecord) -> None:
        """Return once `record` is committed (LedgerError, LedgerConflict when it is not)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._intents.append((record, future, loop))
            self._kick()
        await future

    def transition(self, record: OrderTransitionRecord) -> None:
        with self._lock:
            self._transitions.append(record)
            try:
                self._kick()
            except RuntimeError as exc:  # the writer has shut down: the engine is closing
                self.errors["journal"] += 1
                log.error("order %s: transition %s not journalled: %s", record.client_order_id, record.status, exc)

    def _kick(self) -> None:
        if not self._queued:
            self._queued = True
            try:
                self.writer.executor.submit(self._write)
            except RuntimeError:
                self._queued = False
                raise

    def _write(self) -> None:
        """On the writer thread: every intent waiting in one transaction, then every transition."""
        with self._lock:
            intents, transitions = self._intents, self._transitions
            self._intents, self._transitions, self._queued = [], [], False
        if intents:
            self._write_intents(intents)
        if transitions:
            self._write_transitions(transitions)

    def _write_intents(self, waiting: list[Waiter]) -> None:
        try:
            self.ledger.record_intents([record for record, _, _ in waiting])
        except LedgerConflict:
            if len(waiting) > 1:  # one bad id must not refuse the others
                for one in waiting:
                    self._write_intents([one])
                return
            _settle(waiting, LedgerConflict(f"order {waiting[0][0].client_order_id} is journalled already"))
        except Exception as exc:  # noqa: BLE001 -- every waiter hears why, and sends nothing
            _settle(waiting, exc)
        else:
            _settle(waiting, None)

    def _write_transitions(self, transitions: Sequence[OrderTransitionRecord]) -> None:
        try:
            self.ledger.record_transitions(transitions)
        except Exception as exc:  # noqa: BLE001 -- counted and logged; reconciliation reads VALR back
            if len(transitions) > 1:
                for one in transitions:
                    self._write_transitions([one])
                return
            self.errors["journal"] += 1
            record = transitions[0]
            log.error("order %s: transition %s not journalled: %s", record.client_order_id, record.status, exc)


def _settle(waiting: list[Waiter], exc: BaseException | None) -> None:
    for _, future, loop in waiting:
        loop.call_soon_threadsafe(_resolve(future, exc))


def _resolve(future: asyncio.Future[None], exc: BaseException | None) -> Callable[[], None]:
    def resolve() -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    return resolve


def transition(
    cid: str,
    status: str,
    at: datetime,
    venue_order_id: str | None = None,
    filled: float = 0.0,
    average: float | None = None,
    fee: float = 0.0,
    detail: str = "",
) -> OrderTransitionRecord:
    return OrderTransitionRecord(cid, status, at, venue_order_id, filled, average, fee, detail[:500])
