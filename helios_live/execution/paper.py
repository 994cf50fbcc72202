"""Paper execution: market orders filled at once against the streamed order book (or the last
price plus slippage), as the exchange would fill them, with nothing sent anywhere.

Like an exchange, it refuses an opening order the account's cash cannot pay (margin plus fee)
and one it has no price for; it answers every order with events, before `submit` returns.
A paper order fills at the moment it was placed: an exit found while replaying candles missed
during an outage fills at that candle's time and price, not at today's.
"""

from __future__ import annotations

from typing import Protocol

from helios_core.market import Book
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import OrderPurpose
from helios_core.trading.fills import FillModel, MarketFill, market_fill
from helios_core.trading.orders import Fill, OrderAccepted, OrderEvent, OrderFilled, OrderIntent, OrderRejected
from helios_live.execution import OrderEventSink


class Market(Protocol):
    """What a paper fill needs to know: the book and last price of a pair, and the free cash."""

    def book(self, pair: str) -> Book | None: ...

    def last(self, pair: str) -> float: ...

    def cash(self) -> float: ...


def priced(
    intent: OrderIntent, book: Book | None, last: float, at: float, model: FillModel, cash: float
) -> MarketFill | str:
    """The fill a market order gets (from `book`, else `last`), or why the exchange refuses it: no
    price to fill at, or an opening the cash cannot pay margin and fee for. Paper and candle
    execution share this rule; they differ in where the price comes from."""
    try:
        fill = market_fill(intent.side, intent.quantity, book, last, at, model)
    except ValueError as exc:
        return str(exc)
    if intent.purpose is not OrderPurpose.OPEN:
        return fill
    need = fill.notional / intent.leverage + fill.fee
    return f"insufficient cash: needs {need:.2f}, holds {cash:.2f}" if need > cash else fill


class PaperExecutionClient:
    def __init__(self, market: Market, model: FillModel) -> None:
        self.market = market
        self.model = model
        self._sink: OrderEventSink | None = None

    def subscribe(self, sink: OrderEventSink) -> None:
        self._sink = sink

    async def submit(self, intent: OrderIntent) -> None:
        now = intent.created_at.timestamp()
        cid = intent.client_order_id
        market = self.market
        fill = priced(intent, market.book(intent.pair), market.last(intent.pair), now, self.model, market.cash())
        if isinstance(fill, str):
            self._emit(OrderRejected(cid, fill, now))
            return
        self._emit(OrderAccepted(cid, now))
        filled = Fill(
            cid, fill.price, fill.quantity, fill.fee, fill.liquidity, fill.source, fill.levels, as_datetime(now)
        )
        self._emit(OrderFilled(cid, filled, now))

    async def cancel(self, client_order_id: str) -> None:
        return None  # a paper order is filled or refused as it is placed: nothing is left to cancel

    def _emit(self, event: OrderEvent) -> None:
        if self._sink is None:
            raise RuntimeError("the paper execution client has no subscriber for its order events")
        self._sink(event)
