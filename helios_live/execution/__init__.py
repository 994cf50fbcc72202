"""Execution clients: the one interface through which orders leave, and their answers come back.

`submit(intent)` hands an order to a venue (paper, a backtest's simulated exchange, or a real
one); acceptances, fills (now or much later, whole or in parts), rejections and the venue's own
cancels come back as order events to the subscribed sink. The same client order id names the
order throughout, so a retried submit cannot place it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from helios_core.trading.orders import OrderEvent, OrderIntent

OrderEventSink = Callable[[OrderEvent], None]


class ExecutionClient(Protocol):
    def subscribe(self, sink: OrderEventSink) -> None:
        """Where this client's order events go (the desk)."""
        ...

    async def submit(self, intent: OrderIntent) -> None:
        """Place the order; its events may arrive before this returns or at any time after."""
        ...

    async def cancel(self, client_order_id: str) -> None:
        """Ask to cancel what is not filled yet; the answer is an OrderCanceled event (or a fill)."""
        ...
