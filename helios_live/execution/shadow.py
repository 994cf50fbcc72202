"""SHADOW execution: every order built, rounded to VALR's rules, checked against the LIVE caps
and signed exactly as LIVE would send it, journalled with the request it would have sent, and
then filled as paper, on the streamed book: nothing reaches VALR.

A shadow run shows what LIVE would have done with the same decisions, including the orders
VALR's minimums would have refused, without risking anything.
"""

from __future__ import annotations

from dataclasses import replace

from helios_core.timeframes import as_datetime
from helios_core.trading.enums import OrderPurpose
from helios_core.trading.orders import OrderAccepted, OrderEvent, OrderFilled, OrderIntent, OrderRejected
from helios_live.execution import OrderEventSink
from helios_live.execution.journal import intent_record, transition
from helios_live.execution.paper import PaperExecutionClient
from helios_live.execution.valr import ValrExecutionClient
from helios_live.ledger.orders import OrderTransitionRecord
from helios_live.venues.valr.trading import order_request


class ShadowExecutionClient:
    def __init__(self, venue: ValrExecutionClient, paper: PaperExecutionClient) -> None:
        self.venue, self.paper = venue, paper
        self._journalled: set[str] = set()  # orders with a journal row (a refusal before it has none)
        self._sink: OrderEventSink | None = None

    def subscribe(self, sink: OrderEventSink) -> None:
        self._sink = sink
        self.paper.subscribe(self._heard)

    async def prepare(self) -> None:
        """VALR's pair rules (public): what every order is rounded to and checked against."""
        self.venue.rules = await self.venue.rest.pairs()

    async def submit(self, intent: OrderIntent) -> None:
        venue, cid = self.venue, intent.client_order_id
        refusal, quantity = venue.check(intent)
        if refusal is not None:
            self._heard(OrderRejected(cid, refusal, intent.created_at.timestamp()))
            return
        request = order_request(intent.pair, str(intent.side), quantity, cid)
        venue.rest.sign(request)  # signed as LIVE would sign it: the credentials and the clock are exercised
        sent = request.record()
        await venue.journal.intent(intent_record(intent, float(quantity), sent, venue.opening(cid)))
        self._journalled.add(cid)
        if intent.purpose is OrderPurpose.OPEN:
            venue.count_opening(intent, float(quantity))
        await self.paper.submit(replace(intent, quantity=float(quantity)))

    async def cancel(self, client_order_id: str) -> None:
        await self.paper.cancel(client_order_id)

    def _heard(self, event: OrderEvent) -> None:
        cid = event.client_order_id
        if cid in self._journalled:
            self.venue.journal.transition(_transition(event))
            if not isinstance(event, OrderAccepted):
                self._journalled.discard(cid)  # paper answers once: filled or refused
        if self._sink is not None:
            self._sink(event)


def _transition(event: OrderEvent) -> OrderTransitionRecord:
    cid = event.client_order_id
    if isinstance(event, OrderFilled):
        f = event.fill
        return transition(cid, "FILLED", f.filled_at, "shadow", f.quantity, f.price, f.fee, "paper fill")
    if isinstance(event, OrderAccepted):
        return transition(cid, "ACCEPTED", as_datetime(event.ts), "shadow")
    reason = getattr(event, "reason", "")
    return transition(
        cid, "FAILED" if isinstance(event, OrderRejected) else "CANCELLED", as_datetime(event.ts), detail=reason
    )
