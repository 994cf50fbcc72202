"""A backtest's simulated exchange, filling on candles: a market order waits for its pair's next
candle and fills at that candle's open moved by the slippage model, never at the close that
produced the signal; an exit the backtester found inside a candle (a stop, a take-profit, a
liquidation) fills at its trigger price, or at the candle's open when the market opened beyond it.

Fees and slippage are paper trading's (`helios_core.trading.fills.FillModel`): every fill is a
taker's. Like the exchange and paper execution, it refuses an opening the account's cash cannot
pay (margin plus fee) at the moment it fills.
"""

from __future__ import annotations

from collections.abc import Callable

from helios_core.timeframes import as_datetime
from helios_core.trading.enums import OrderPurpose
from helios_core.trading.fills import FillModel
from helios_core.trading.orders import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderIntent,
    OrderRejected,
)
from helios_live.execution import OrderEventSink
from helios_live.execution.paper import priced

OPEN_FILL = "OPEN"  # priced by the next candle's open
TRIGGER_FILL = "TRIGGER"  # priced by a stop or take-profit inside a candle


class CandleExecutionClient:
    def __init__(self, model: FillModel, cash: Callable[[], float]) -> None:
        self.model = model
        self.cash = cash
        self.pending: dict[str, OrderIntent] = {}  # by client order id, in submission order
        self._triggers: dict[str, float] = {}  # position key -> the price its next close fills at
        self._sink: OrderEventSink | None = None

    def subscribe(self, sink: OrderEventSink) -> None:
        self._sink = sink

    def trigger(self, position_key: str, price: float) -> None:
        """The next closing order of `position_key` fills at once at `price` (a stop or target the
        backtester saw touched), rather than at the next candle's open."""
        self._triggers[position_key] = price

    def closing(self, position_key: str) -> bool:
        """Whether a closing (or trimming) order of the position waits for the next candle."""
        return any(i.position_key == position_key and i.purpose is not OrderPurpose.OPEN for i in self.pending.values())

    async def submit(self, intent: OrderIntent) -> None:
        now = intent.created_at.timestamp()
        self._emit(OrderAccepted(intent.client_order_id, now))
        price = self._triggers.pop(intent.position_key, None) if intent.purpose is OrderPurpose.CLOSE else None
        if price is not None:
            self._fill(intent, price, now, TRIGGER_FILL)
        else:
            self.pending[intent.client_order_id] = intent

    async def cancel(self, client_order_id: str) -> None:
        intent = self.pending.pop(client_order_id, None)
        if intent is not None:
            self._emit(
                OrderCanceled(client_order_id, "cancelled before the next candle", intent.created_at.timestamp())
            )

    def on_open(self, pair: str, price: float, at: float) -> None:
        """`pair`'s next candle opened at `price` (epoch `at`): every order of the pair waiting for
        it fills there, in the order placed."""
        waiting = [cid for cid, intent in self.pending.items() if intent.pair == pair]
        for cid in waiting:
            intent = self.pending.pop(cid)
            self._fill(intent, price, max(at, intent.created_at.timestamp()), OPEN_FILL)

    def _fill(self, intent: OrderIntent, price: float, at: float, source: str) -> None:
        cid = intent.client_order_id
        fill = priced(intent, None, price, at, self.model, self.cash())
        if isinstance(fill, str):
            self._emit(OrderRejected(cid, fill, at))
            return
        filled = Fill(cid, fill.price, fill.quantity, fill.fee, fill.liquidity, source, 0, as_datetime(at))
        self._emit(OrderFilled(cid, filled, at))

    def _emit(self, event: OrderEvent) -> None:
        if self._sink is None:
            raise RuntimeError("the simulated execution client has no subscriber for its order events")
        self._sink(event)
