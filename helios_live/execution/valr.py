"""LIVE execution on VALR: orders rounded to the pair's rules, journalled, signed and sent; their
fate read from the account stream, and from REST where the stream missed it.

An order's life (each step a journal transition): NEW (the intent, committed before anything is
sent) -> ACCEPTED (VALR's 202) -> PARTIALLY_FILLED -> FILLED, or CANCELLED / FAILED / EXPIRED.
A placement that times out or meets a 5xx is UNKNOWN: the client asks VALR for the customer
order id, and sends the same id again only if VALR does not know it; VALR refuses an id it has
seen, so no retry can place a second order. Fills come from the account's trades, each counted
once by its trade id; a terminal status waits until the trades it counts have arrived (fetched
from the trade history when the stream dropped them), so a partial fill is never lost.

A buy on VALR pays its fee in the base currency: the position holds what was received, and the
fee is reported in the quote currency at the trade's price, so cash and P&L stay exact.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from helios_core.errors import HeliosError, SourceError, TemporaryError
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import OrderPurpose
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
from helios_live.execution.journal import Journal, intent_record, transition
from helios_live.venues.valr import account
from helios_live.venues.valr.pairs import PairRules
from helios_live.venues.valr.trading import (
    Balance,
    OrderRefused,
    OutcomeUnknown,
    ValrTradingClient,
    VenueError,
    order_request,
)

log = logging.getLogger("helios.execution")
EPS = 1e-12
DAY_S = 86_400
TERMINAL = ("FILLED", "CANCELLED", "FAILED", "EXPIRED")


@dataclass(frozen=True, slots=True)
class Caps:
    """Optional ceilings on what LIVE may open, in the quote currency; exits are never capped."""

    order_notional: float | None = None
    day_notional: float | None = None


@dataclass
class _Live:
    """What the client knows of one of its orders."""

    intent: OrderIntent
    quantity: Decimal
    venue_id: str | None = None
    status: str = "NEW"
    trades: set[str] = field(default_factory=set)
    gross: float = 0.0  # base quantity traded, before a base-currency fee
    net: float = 0.0  # what the account holds for it
    notional: float = 0.0
    fee: float = 0.0  # quote currency
    held: account.OrderStatus | None = None  # a terminal status waiting for its trades

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class ValrExecutionClient:
    def __init__(
        self,
        rest: ValrTradingClient,
        journal: Journal,
        *,
        price: Callable[[str], float],
        caps: Caps | None = None,
        clock: Callable[[], float] = time.time,
        resends: int = 2,
    ) -> None:
        self.rest, self.journal, self.price = rest, journal, price
        self.caps = caps or Caps()
        self.clock = clock
        self.resends = resends
        self.rules: dict[str, PairRules] = {}
        self.balances: dict[str, Balance] = {}
        self.fees: dict[str, tuple[float, float]] = {}  # pair -> (maker, taker), VALR's tier
        self.orders: dict[str, _Live] = {}  # by client order id, until terminal
        self.opening: Callable[[str], dict[str, Any] | None] = lambda cid: None  # the desk's parameters
        self.problem: Callable[[str, dict[str, Any]], None] = lambda kind, detail: None  # an engine event
        self.stats: Counter[str] = Counter()
        self._by_venue: dict[str, str] = {}
        self._early: dict[str, list[account.AccountTrade | account.OrderStatus]] = {}
        self._spent: tuple[int, float] = (0, 0.0)  # (UTC day, notional opened that day)
        self._sink: OrderEventSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, sink: OrderEventSink) -> None:
        self._sink = sink

    async def prepare(self) -> None:
        """VALR's pair rules and the account's balances (the read-only check LIVE needs), and
        its fee tier, shown in the status (the fills themselves carry what VALR charged)."""
        self.rules = await self.rest.pairs()
        self.balances = await self.rest.balances()
        try:
            self.fees = await self.rest.fees()
        except (TemporaryError, VenueError, SourceError) as exc:
            log.warning("VALR's fee tier not read: %s", exc)

    # placing ---------------------------------------------------------------------------------
    async def submit(self, intent: OrderIntent) -> None:
        cid, now = intent.client_order_id, intent.created_at.timestamp()
        refusal, quantity = self.check(intent)
        if refusal is not None:
            self.stats["refused"] += 1
            self._emit(OrderRejected(cid, refusal, now))
            return
        request = order_request(intent.pair, str(intent.side), quantity, cid)
        record = intent_record(intent, float(quantity), request.record(), self.opening(cid))
        await self.journal.intent(record)  # committed before the request leaves, or nothing leaves
        live = self.orders[cid] = _Live(intent, quantity)
        if intent.purpose is OrderPurpose.OPEN:
            self.count_opening(intent, float(quantity))
        for attempt in range(self.resends + 1):
            try:
                venue_id = await self.rest.place(request)
            except OutcomeUnknown as exc:
                if live.venue_id is not None or live.done:
                    return  # the account stream answered while the request hung
                self._journal(live, "UNKNOWN", detail=str(exc))
                if await self._resolve(live):
                    return
                continue  # VALR does not know the id: sending it again cannot make a second order
            except OrderRefused as exc:
                # A resend can meet the first request, processed late, as a duplicate id.
                if attempt and await self._resolve(live):
                    return
                self._fail(live, str(exc), now)
                return
            except (TemporaryError, VenueError) as exc:
                self._fail(live, str(exc), now)
                return
            self._accepted(live, venue_id, now)
            return
        log.error("order %s: outcome still unknown after %d attempts; the status poll will settle it", cid, attempt + 1)

    def check(self, intent: OrderIntent) -> tuple[str | None, Decimal]:
        """The quantity VALR would take for `intent`, and why it would not be sent (VALR's pair
        rules; for an opening, the LIVE caps), or None."""
        rules = self.rules.get(intent.pair)
        if rules is None:
            return f"no VALR trading rules for {intent.pair} (is it listed?)", Decimal(0)
        quantity = rules.quantity(intent.quantity)
        price = self.price(intent.pair)
        refusal = rules.refusal(quantity, price if price > 0 else 0.0)
        if refusal is not None or intent.purpose is not OrderPurpose.OPEN:
            return refusal, quantity
        notional = float(quantity) * price if price > 0 else math.nan
        caps = self.caps
        if caps.order_notional is not None and not notional <= caps.order_notional:
            return f"order notional {notional:.2f} is above the LIVE cap per order {caps.order_notional:.2f}", quantity
        spent = self._spent_today()
        if caps.day_notional is not None and not spent + notional <= caps.day_notional:
            return (
                f"today's LIVE notional would reach {spent + notional:.2f}, above the cap {caps.day_notional:.2f}",
                quantity,
            )
        return None, quantity

    def _spent_today(self) -> float:
        day, spent = self._spent
        return spent if day == int(self.clock() // DAY_S) else 0.0

    def count_opening(self, intent: OrderIntent, quantity: float) -> None:
        """Add an opening's notional to today's, which the day cap is checked against."""
        spent = self._spent_today() + quantity * max(self.price(intent.pair), 0.0)
        self._spent = (int(self.clock() // DAY_S), spent)

    async def _resolve(self, live: _Live) -> bool | None:
        """Ask VALR for the order by its customer id: True when it exists (and is now tracked),
        False when VALR does not know it, None when VALR could not be asked."""
        try:
            status = await self.rest.order(live.intent.pair, live.intent.client_order_id)
        except (TemporaryError, VenueError) as exc:
            log.warning("order %s: status unknown: %s", live.intent.client_order_id, exc)
            return None
        if status is None:
            return False
        try:
            self.on_status(account.order_status(status, as_datetime(self.clock())))
        except (KeyError, TypeError, ValueError) as exc:
            self.stats["malformed"] += 1
            log.warning("order %s: malformed status %s: %s", live.intent.client_order_id, str(status)[:120], exc)
            return None
        return True

    async def cancel(self, client_order_id: str) -> None:
        live = self.orders.get(client_order_id)
        if live is not None:
            await self.rest.cancel(live.intent.pair, client_order_id)

    async def cancel_all(self) -> list[dict[str, Any]]:
        """Cancel every open order on the account (the emergency stop's first step)."""
        return await self.rest.cancel_all()

    # what VALR says ------------------------------------------------------------------------------
    async def on_message(self, raw: str | bytes, received: float) -> None:
        update = account.parse(raw, as_datetime(self.clock()))
        if isinstance(update, account.Malformed):
            self.stats["malformed"] += 1
            log.warning("account stream: malformed message: %s", update.reason)
            self.problem("VALR_MESSAGE_REJECTED", {"reason": update.reason})
        elif isinstance(update, account.AccountTrade):
            self.on_trade(update)
        elif isinstance(update, account.OrderStatus):
            self.on_status(update)
        elif isinstance(update, account.Processed):
            if not update.success:
                cid = self._by_venue.get(update.order_id)
                if cid is not None and cid in self.orders:
                    self._fail(self.orders[cid], update.reason or "VALR failed the order", self.clock())
        elif isinstance(update, account.BalanceUpdate):
            self.balances[update.currency] = Balance(update.currency, update.available, update.reserved, update.total)
        # OPEN_ORDERS_UPDATE is validated and left: reconciliation asks REST for the open orders.

    async def on_connected(self) -> None:
        self.stats["connects"] += 1
        if self.stats["connects"] > 1:
            self._spawn(self.catch_up())  # what the stream missed while it was down

    async def on_disconnected(self, reason: str) -> None:
        log.warning("account stream lost: %s", reason)

    def on_trade(self, trade: account.AccountTrade) -> None:
        cid = self._by_venue.get(trade.order_id) or (trade.customer_order_id if trade.customer_order_id else None)
        live = self.orders.get(cid) if cid else None
        if live is None:
            self._early_or_foreign(trade)
            return
        if trade.trade_id in live.trades or live.done:
            return
        if live.venue_id is None:  # the stream beat the 202: the trade says VALR has it
            self._accepted(live, trade.order_id, trade.at.timestamp())
        live.trades.add(trade.trade_id)
        rules = self.rules.get(trade.pair)
        base_fee = rules is not None and trade.fee_currency == rules.base
        net = trade.quantity - trade.fee if base_fee else trade.quantity
        fee = trade.fee * trade.price if base_fee else trade.fee
        live.gross += trade.quantity
        live.net += net
        live.notional += net * trade.price
        live.fee += fee
        final = live.gross >= float(live.quantity) * (1 - 1e-9)
        filled = Fill(live.intent.client_order_id, trade.price, net, fee, "TAKER", "VALR", 0, trade.at)
        live.status = "FILLED" if final else "PARTIALLY_FILLED"
        self._journal(live, live.status, trade.at)
        self._emit(OrderFilled(live.intent.client_order_id, filled, trade.at.timestamp(), final=final))
        if final:
            self._forget(live)
        elif live.held is not None and live.gross >= live.held.executed - EPS:
            self._finish(live, live.held)

    def on_status(self, status: account.OrderStatus) -> None:
        cid = self._by_venue.get(status.order_id) or status.customer_order_id
        live = self.orders.get(cid)
        if live is None:
            if status.order_id not in self._by_venue and status.status not in TERMINAL and len(self._early) < 1000:
                self._early.setdefault(status.order_id, []).append(status)
            return
        if live.venue_id is None:
            self._accepted(live, status.order_id, status.at.timestamp())
        if status.status not in TERMINAL or live.done:
            return
        if live.gross < status.executed - EPS:
            live.held = status  # its trades are still to come: from the stream, or fetched now
            self._spawn(self.fetch_trades())
            return
        self._finish(live, status)

    def _finish(self, live: _Live, status: account.OrderStatus) -> None:
        cid, at = live.intent.client_order_id, status.at.timestamp()
        if status.status == "FILLED":
            if not live.done:  # every trade counted, yet fewer than ordered: VALR's word ends it
                live.status = "FILLED"
                self._journal(live, "FILLED", status.at, detail="filled per VALR")
                self._emit(OrderCanceled(cid, "VALR reports the order filled", at))
                self._forget(live)
            return
        live.status = status.status
        reason = status.reason or f"{status.status.lower()} on VALR"
        self._journal(live, status.status, status.at, detail=reason)
        if status.status == "FAILED":
            self._emit(OrderRejected(cid, reason, at))
        else:
            self._emit(OrderCanceled(cid, reason, at))
        self._forget(live)

    # catching up ---------------------------------------------------------------------------------
    async def catch_up(self) -> None:
        """Ask VALR about every order not yet over, and read the trades the stream missed."""
        for live in list(self.orders.values()):
            if live.venue_id is None and live.status == "NEW":
                continue  # its placement is still awaiting an answer
            if await self._resolve(live) is False and live.status in ("UNKNOWN", "ACCEPTED"):
                self._fail(live, "VALR does not know the order: it never reached the exchange", self.clock())
        await self.fetch_trades()

    async def fetch_trades(self) -> None:
        try:
            rows = await self.rest.trades(100)
        except (TemporaryError, VenueError) as exc:
            log.warning("account trades not fetched: %s", exc)
            return
        for row in reversed(rows):  # oldest first, as they happened
            try:
                trade = account.trade(row)
            except (KeyError, TypeError, ValueError) as exc:
                self.stats["malformed"] += 1
                log.warning("trade history: malformed trade %s: %s", str(row)[:120], exc)
                continue
            if self._by_venue.get(trade.order_id) in self.orders or trade.customer_order_id in self.orders:
                self.on_trade(trade)
        for live in list(self.orders.values()):
            if live.held is not None and not live.done:
                if live.gross < live.held.executed - EPS:
                    self.stats["trades_missing"] += 1
                    log.error("order %s: VALR counts %.8g traded, its trades %.8g; reconciliation will see it",
                              live.intent.client_order_id, live.held.executed, live.gross)  # fmt: skip
                self._finish(live, live.held)  # the history holds no more: VALR's status ends it

    async def resume(self, cid: str, intent: OrderIntent, quantity: float, venue_id: str | None, status: str) -> None:
        """Track a journalled order a previous run left unfinished, and learn its fate."""
        live = self.orders[cid] = _Live(intent, Decimal(repr(quantity)), venue_id=venue_id, status=status)
        if venue_id:
            self._by_venue[venue_id] = cid
        found = await self._resolve(live)
        if found is False:
            reason = "VALR does not know the order: the run that journalled it ended before sending it"
            self._fail(live, reason, self.clock())
            return
        await self.fetch_trades()  # found, or not askable now: the status poll asks again

    # bookkeeping ------------------------------------------------------------------------------
    def _accepted(self, live: _Live, venue_id: str, at: float) -> None:
        if live.venue_id is None:
            self._map(live, venue_id)
        if live.status in ("NEW", "UNKNOWN"):
            live.status = "ACCEPTED"
            self._journal(live, "ACCEPTED", as_datetime(at))
            self._emit(OrderAccepted(live.intent.client_order_id, at, float(live.quantity)))
        for early in self._early.pop(venue_id, []):
            if isinstance(early, account.AccountTrade):
                self.on_trade(early)
            else:
                self.on_status(early)

    def _map(self, live: _Live, venue_id: str) -> None:
        live.venue_id = venue_id
        self._by_venue[venue_id] = live.intent.client_order_id

    def _fail(self, live: _Live, reason: str, at: float) -> None:
        if live.done:
            return
        if live.gross > 0:  # partly filled, then failed: what filled is the order's
            at = max(at, live.intent.created_at.timestamp())
            ordered = float(live.quantity)
            status = account.OrderStatus(
                live.venue_id or "", live.intent.client_order_id, live.intent.pair, "CANCELLED", ordered,
                ordered - live.gross, reason, as_datetime(at),
            )  # fmt: skip
            self._finish(live, status)
            return
        live.status = "FAILED"
        self._journal(live, "FAILED", as_datetime(max(at, live.intent.created_at.timestamp())), detail=reason)
        self._emit(OrderRejected(live.intent.client_order_id, reason, at))
        self._forget(live)

    def _forget(self, live: _Live) -> None:
        self.orders.pop(live.intent.client_order_id, None)

    def _early_or_foreign(self, trade: account.AccountTrade) -> None:
        if trade.order_id in self._by_venue:
            return  # an order of ours already over: a repeat
        if trade.customer_order_id or len(self._early) > 1000:
            self.stats["foreign_trades"] += 1
            ids = {"order_id": trade.order_id, "customer_order_id": trade.customer_order_id, "trade_id": trade.trade_id}
            self.problem("VALR_UNKNOWN_ORDER", ids | {"pair": trade.pair})
            return
        self._early.setdefault(trade.order_id, []).append(trade)  # its 202 may still be on its way

    def _journal(self, live: _Live, status: str, at: datetime | None = None, detail: str = "") -> None:
        average = live.notional / live.net if live.net > 0 else None
        when = at or as_datetime(self.clock())
        self.journal.transition(
            transition(live.intent.client_order_id, status, when, live.venue_id, live.net, average, live.fee, detail)
        )

    def _emit(self, event: OrderEvent) -> None:
        if self._sink is None:
            raise HeliosError("the VALR execution client has no subscriber for its order events")
        self._sink(event)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
