"""The trading desk: the trader, the trading mode, orders through the mode's execution client,
positions watched on every price, the emergency close, and recovery from the ledger.

Positions are watched on every trade, bucket and summary price and on the clock's ticks (for
time-outs), not on a poll. An order goes out as an intent through the execution client of the
current mode; its fills come back as events, and only then does the account change. A close
goes to the ledger as one unit with its order, fills and the portfolio snapshot after it; an
opening goes with the decision that made it (or, when its fill comes after that decision was
stored, as a unit of its own).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from helios_core.errors import HeliosError
from helios_core.market import Book
from helios_core.risk.limits import Exposure
from helios_core.timeframes import as_datetime
from helios_core.trading.account import Account, PortfolioSnapshot
from helios_core.trading.enums import CloseReason, OrderPurpose, OrderStatus, PositionSide, PositionStatus, TradingMode
from helios_core.trading.fills import mid
from helios_core.trading.orders import Order, OrderEvent, OrderIntent
from helios_core.trading.position import Execution, Position, exit_reason
from helios_live.execution import ExecutionClient
from helios_live.ledger import Ledger, ModeRecord
from helios_live.ledger.records import DecisionRef
from helios_live.ledger.writer import LedgerWriter
from helios_live.trading.trader import Trader, TradingConfig

log = logging.getLogger("helios.live")
CONFIRMATION = "I_CONFIRM_LIVE_TRADING"  # the design's phrase (section 31)


class ModeError(HeliosError):
    """A mode switch the desk refuses; the message says why."""


class PositionError(HeliosError):
    """A command on a position that is not open."""


@dataclass(frozen=True, slots=True)
class _Opening:
    """What an opening order becomes once filled: a position with these parameters."""

    pair: str
    side: PositionSide
    margin: float
    leverage: float
    stop_loss_pct: float
    take_profit_pct: float
    decision: DecisionRef | None


Publish = Callable[[dict[str, Any]], None]


class Desk:
    def __init__(
        self,
        config: TradingConfig,
        pairs: tuple[str, ...],
        writer: LedgerWriter,
        books: Callable[[str], Book | None],
        publish: Publish,
    ) -> None:
        self.config = config
        self.pairs = pairs
        self.trader = Trader(config, pairs)
        self.writer = writer
        self.books = books
        self.publish = publish
        self.mode = TradingMode.PAPER
        self.clients: dict[TradingMode, ExecutionClient] = {}
        self.decided_until: dict[str, float] = {}
        self.fills: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.fill_latencies: deque[float] = deque(maxlen=10_000)  # seconds, closing message -> committed entry
        self.orders: dict[str, Order] = {}  # not yet terminal, by client order id
        self._openings: dict[str, _Opening] = {}
        self._closing: set[str] = set()  # position keys with a close order out
        self._trimming: set[str] = set()  # position keys with a trim order out
        self._exit_after: dict[str, CloseReason] = {}  # exits that met a trim out: they go when it ends
        self._deferred: set[asyncio.Task[Execution | str | None]] = set()
        self._waiting: dict[str, Execution | str | None] = {}  # orders whose submit is being awaited
        self._attempts: dict[str, int] = {}  # close orders sent per position
        self._partial: dict[str, list[Order]] = {}  # close orders that filled in part, per position
        self._before: dict[str, Position] = {}  # each stored-to-be trim's position before it, for an undo
        self._trim_ids: set[str] = set()
        self.on_opened: Callable[[Position], None] = lambda position: None  # the kernel watches its time-out

    @property
    def account(self) -> Account:
        return self.trader.account

    def connect(self, mode: TradingMode, client: ExecutionClient) -> None:
        """Orders in `mode` go through `client`; its events come back to this desk."""
        client.subscribe(self.on_order_event)
        self.clients[mode] = client

    # what a paper fill reads (execution.paper.Market) --------------------------------------------
    def book(self, pair: str) -> Book | None:
        return self.books(pair)

    def last(self, pair: str) -> float:
        return self.account.marks.get(pair, math.nan)

    def cash(self) -> float:
        return self.account.cash

    # recovery (on the ledger's thread) ------------------------------------------------------
    def restore(self, ledger: Ledger, pairs: tuple[str, ...]) -> dict[str, Any]:
        """Rebuild the mode, the account and open positions from the ledger, as a crash left them."""
        self.mode = ledger.mode()
        totals = ledger.account()
        account = Account.rebuild(
            self.config.capital, totals["realised"], ledger.open_positions(), ledger.latest_snapshot()
        )
        self.pairs = pairs
        self.trader = Trader(self.config, pairs, account)
        # A restart starts the counts again, and no order of an earlier run is still ours.
        self.fills.clear()
        self.errors.clear()
        self.fill_latencies.clear()
        self.orders.clear()
        self._openings.clear()
        self._closing.clear()
        self._trimming.clear()
        self._exit_after.clear()
        self._waiting.clear()
        self._attempts.clear()
        self._partial.clear()
        self._before.clear()
        self._trim_ids.clear()
        self.decided_until = {p: ts.timestamp() for p in self.pairs if (ts := ledger.decided_until(p)) is not None}
        return {
            "mode": self.mode,
            "open_positions": len(account.positions),
            "closed_positions": int(totals["closed"]),
            "cash": round(account.cash, 2),
            "equity": round(account.equity, 2),
        }

    # entries ------------------------------------------------------------------------------------
    async def open(
        self,
        key: str,
        pair: str,
        side: PositionSide,
        margin: float,
        leverage: float,
        stop_loss_pct: float,
        take_profit_pct: float,
        now: float,
        decision: DecisionRef | None = None,
    ) -> Execution | str | None:
        """Open a position committing about `margin` of cash: its execution, why not (a string),
        or None while a venue has the order and its fill is still to come."""
        client = self.clients.get(self.mode)
        if client is None:
            return f"no execution client for {self.mode}: it needs VALR credentials and a start in that mode"
        reference = mid(self.books(pair), now, self.config.fills) or self.last(pair)
        if not reference > 0:
            return f"no price for {pair}"
        intent = OrderIntent(
            f"{key}-O", key, pair, side.entry, OrderPurpose.OPEN, margin * leverage / reference, self.mode,
            as_datetime(now), leverage,
        )  # fmt: skip
        opening = _Opening(pair, side, margin, leverage, stop_loss_pct, take_profit_pct, decision)
        self._openings[intent.client_order_id] = opening
        return await self._submit(client, intent)

    def opening_record(self, cid: str) -> dict[str, Any] | None:
        """What the journal keeps of an opening, so a restart can still make its position."""
        o = self._openings.get(cid)
        if o is None:
            return None
        decision = None
        if o.decision is not None:
            decision = {"pair": o.decision.pair, "candle_ts": o.decision.candle_ts.isoformat(),
                        "model_version": o.decision.model_version}  # fmt: skip
        return {"side": str(o.side), "margin": o.margin, "leverage": o.leverage,
                "stop_loss_pct": o.stop_loss_pct, "take_profit_pct": o.take_profit_pct,
                "decision": decision}  # fmt: skip

    def resume(self, intent: OrderIntent, opening: dict[str, Any] | None) -> None:
        """Hold again an order a previous run journalled and did not see end: its fill (learnt
        from the venue) becomes a position, or closes one, as if this run had sent it."""
        self.orders[intent.client_order_id] = Order(intent)
        if intent.purpose is OrderPurpose.REDUCE:
            self._trimming.add(intent.position_key)
            return
        if intent.purpose is OrderPurpose.CLOSE or opening is None:
            self._closing.add(intent.position_key)
            return
        d = opening.get("decision")
        decision = DecisionRef(d["pair"], datetime.fromisoformat(d["candle_ts"]), d["model_version"]) if d else None
        self._openings[intent.client_order_id] = _Opening(
            intent.pair, PositionSide(opening["side"]), float(opening["margin"]), float(opening["leverage"]),
            float(opening["stop_loss_pct"]), float(opening["take_profit_pct"]), decision,
        )  # fmt: skip

    def pending_exposures(self, sectors: dict[str, str]) -> tuple[Exposure, ...]:
        """Openings a venue holds and has not filled yet (a backtest's orders wait for the next
        candle): the portfolio limits count them as if open, or two pairs deciding at one close
        could together pass a limit each passes alone."""
        return tuple(
            Exposure(o.pair, sectors.get(o.pair, "crypto"), o.margin, o.leverage) for o in self._openings.values()
        )

    def holding(self, pair: str) -> str | None:
        """The key of `pair`'s open position, or of an opening on it a venue has not filled yet;
        None when it has neither (one position per pair: a second entry is denied)."""
        for position in self.account.positions.values():
            if position.pair == pair:
                return position.key
        for cid, opening in self._openings.items():
            if opening.pair == pair:
                order = self.orders.get(cid)
                return order.intent.position_key if order is not None else cid
        return None

    def _opened(self, order: Order, opening: _Opening) -> Execution | str:
        if order.filled_quantity <= 0:
            return order.reason or f"order {order.status.lower()}"
        fill, intent = order.fills[-1], order.intent
        price, sl, tp = order.average_price, opening.stop_loss_pct, opening.take_profit_pct
        long = opening.side is PositionSide.LONG
        position = Position(
            key=intent.position_key,
            pair=intent.pair,
            side=opening.side,
            status=PositionStatus.OPEN,
            quantity=order.filled_quantity,
            entry_price=price,
            margin=order.notional / opening.leverage,
            leverage=opening.leverage,
            stop_loss_price=price * (1 - sl if long else 1 + sl),
            take_profit_price=price * (1 + tp if long else 1 - tp),
            opened_at=fill.filled_at,
            deadline=as_datetime(fill.filled_at.timestamp() + self.config.sizing.max_hold_s),
            entry_fee=order.fees,
        )
        try:
            self.account.open(position)
        except ValueError as exc:  # filled, but the account cannot hold it: say so loudly
            self.errors["open_not_held"] += 1
            log.error("opening %s filled but not held: %s", order.client_order_id, exc)
            return f"filled but not held: {exc}"
        return Execution(order, position)

    def opened(self, execution: Execution) -> None:
        """An opening is in the ledger (with its decision): count it, watch it, tell the event stream."""
        self.fills["OPEN"] += 1
        self.on_opened(execution.position)
        self.publish({"type": "position", "event": "OPEN", **_position(execution)})

    # exits ----------------------------------------------------------------------------------
    async def on_price(self, pair: str, price: float, now: float) -> bool:
        """A trade, bucket or summary price (NaN: a tick of the clock, time-outs only) at epoch
        `now`; closes whatever it triggers. True when the drawdown reached the hard stop.

        A position is judged only on prices after it opened, and history from before all of the
        pair's positions (a restart's warm-up replays days of it) moves nothing at all."""
        account = self.account
        held = [p for p in account.positions.values() if p.pair == pair]
        live = [p for p in held if p.opened_at.timestamp() <= now]
        if held and not live:
            return False
        if price > 0:
            account.mark(pair, price, now)
        else:  # a tick: the latest mark again (time-outs are what a tick can change)
            account.roll(now)
            price = account.marks.get(pair, math.nan)
        fee = self.config.fills.taker_fee
        exits = [(p.key, r) for p in live if (r := exit_reason(p, price, now, fee)) is not None]
        closed = [e for key, reason in exits if isinstance(e := await self._close(key, reason, now), Execution)]
        self._store_closes(closed, now)
        limit = self.config.limits.max_drawdown
        return bool(closed or account.positions) and account.drawdown >= limit

    async def close(self, key: str, reason: CloseReason, now: float) -> Execution:
        """Close one open position at the market now (PositionError when it is not open)."""
        if key not in self.account.positions:
            raise PositionError(f"position {key} is not open")
        execution = await self._close(key, reason, now)
        if not isinstance(execution, Execution):
            raise PositionError(f"position {key} was not closed: {execution or 'the fill is still to come'}")
        self._store_closes([execution], now)
        return execution

    async def request_close(self, key: str, reason: CloseReason, now: float) -> Execution | str | None:
        """Close one open position as `close` does, saying why not instead of raising; None:
        the fill is still to come (and is stored when it does)."""
        if key not in self.account.positions:
            return f"position {key} is not open"
        execution = await self._close(key, reason, now)
        if isinstance(execution, Execution):
            self._store_closes([execution], now)
        return execution

    async def close_all(self, reason: CloseReason, now: float) -> list[Execution]:
        closed = []
        for key in list(self.account.positions):
            execution = await self._close(key, reason, now)
            if isinstance(execution, Execution):
                closed.append(execution)
        self._store_closes(closed, now)
        return closed

    async def _close(self, key: str, reason: CloseReason, now: float) -> Execution | str | None:
        if key in self._closing:
            return None  # its close order is out already
        if key in self._trimming:
            # Two sell orders out at once could sell more than is held: the close goes the moment
            # the trim ends (an emergency stop included), whatever the trim did.
            self._exit_after.setdefault(key, reason)
            return None
        position = self.account.positions[key]
        client = self.clients.get(self.mode)
        if client is None:
            return f"no execution client for {self.mode}"
        # A new close after one that ended unfilled is a new order, with an id of its own.
        attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
        # What earlier close orders filled is sold already: this one closes the rest.
        done = sum(o.filled_quantity for o in self._partial.get(key, ()))
        intent = OrderIntent(
            f"{key}-C" if attempt == 1 else f"{key}-C{attempt}", key, position.pair, position.side.exit,
            OrderPurpose.CLOSE, position.quantity - done, self.mode, as_datetime(now), position.leverage, reason,
        )  # fmt: skip
        self._closing.add(key)
        return await self._submit(client, intent)

    async def trim(self, key: str, quantity: float, now: float) -> Execution | str | None:
        """Sell part of an open position at the market (a rebalance); the rest stays open with its
        stops. Stored as a close is (`request_close`). A string says why nothing was sold; None:
        the fill is still to come (and is stored when it does)."""
        position = self.account.positions.get(key)
        if position is None:
            return f"position {key} is not open"
        if key in self._closing or key in self._partial:
            return "it is being closed: nothing to trim"
        if key in self._trimming:
            return "a trim of it is out already: the next check trims again"
        if not 0 < quantity < position.quantity:
            return f"a trim must sell less than the position's {position.quantity:.8g}"
        cid = f"{key}-R{int(now)}"  # by its time, not a count: a restart must never reuse an earlier trim's id
        if cid in self._trim_ids:
            return "a trim of it went out this second already: the next check trims again"
        client = self.clients.get(self.mode)
        if client is None:
            return f"no execution client for {self.mode}"
        self._trim_ids.add(cid)
        intent = OrderIntent(
            cid, key, position.pair, position.side.exit, OrderPurpose.REDUCE, quantity, self.mode,
            as_datetime(now), position.leverage, CloseReason.REBALANCE,
        )  # fmt: skip
        self._trimming.add(key)
        execution = await self._submit(client, intent)
        if isinstance(execution, Execution):
            self._store_closes([execution], now)
        return execution

    def _reduced(self, order: Order) -> Execution | str:
        key = order.intent.position_key
        self._trimming.discard(key)
        at = order.fills[-1].filled_at if order.fills else order.intent.created_at
        self._exit_when_trimmed(key, at.timestamp())
        position = self.account.positions.get(key)
        if position is None:
            return f"position {key} is not open"
        if order.filled_quantity <= 0:
            return order.reason or f"order {order.status.lower()}"
        if order.status is not OrderStatus.FILLED:
            self.errors["trim_not_filled"] += 1  # what filled is sold: the trim counts for that much
        price = order.notional / order.filled_quantity
        if order.filled_quantity >= position.quantity * (1 - 1e-9):  # the venue rounded it up to all: a close
            return Execution(order, self.account.close(key, price, order.fees, CloseReason.REBALANCE, at))
        after = self.account.reduce(key, order.filled_quantity, price, order.fees)
        self._before[order.client_order_id] = position
        return Execution(order, after)

    def _exit_when_trimmed(self, key: str, now: float) -> None:
        reason = self._exit_after.pop(key, None)
        if reason is None:
            return
        task = asyncio.get_running_loop().create_task(self.request_close(key, reason, now))
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    def _closed(self, order: Order) -> Execution | str:
        intent = order.intent
        self._closing.discard(intent.position_key)
        position = self.account.positions.get(intent.position_key)
        if position is None:
            return f"position {intent.position_key} is not open"
        if order.status is not OrderStatus.FILLED:
            # The position stays open and its exit triggers again on the next price; what this
            # order did fill is kept, and the next close order sells only the rest.
            self.errors["close_not_filled"] += 1
            log.error("close %s ended %s: %s", order.client_order_id, order.status, order.reason)
            if order.filled_quantity > 0:
                self._partial.setdefault(position.key, []).append(order)
                return f"close partly filled ({order.filled_quantity:.8g} of {intent.quantity:.8g}): {order.reason}"
            return order.reason or f"order {order.status.lower()}"
        earlier = tuple(self._partial.pop(position.key, ()))
        orders = (*earlier, order)
        quantity = sum(o.filled_quantity for o in orders)
        price = sum(o.notional for o in orders) / quantity  # > 0: this order filled
        fees = sum(o.fees for o in orders)
        closed = self.account.close(position.key, price, fees, CloseReason(intent.reason), order.fills[-1].filled_at)
        self._attempts.pop(position.key, None)
        return Execution(order, closed, earlier)

    def _store_closes(self, closed: list[Execution], now: float) -> None:
        if not closed:
            return
        snapshot = self.snapshot(now, "FILL")
        future = self.writer.submit(None, None, closed, [snapshot])
        asyncio.wrap_future(future).add_done_callback(partial(self._stored, closed))

    def _stored(self, closed: list[Execution], future: asyncio.Future[Any]) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("closes not stored: %s", future.exception())
            for execution in reversed(closed):  # held again in memory, as in the ledger: the exit triggers again
                before = self._before.pop(execution.order.client_order_id, None)
                if before is not None:
                    self.account.undo_reduce(before, execution.position)
                else:
                    self.account.undo_close(execution.position)
            return
        for execution in closed:
            trim = self._before.pop(execution.order.client_order_id, None) is not None
            self.fills["TRIM" if trim else execution.position.close_reason or "CLOSE"] += 1
            self.publish({"type": "position", "event": "TRIM" if trim else "CLOSE", **_position(execution)})

    # orders -----------------------------------------------------------------------------------
    async def _submit(self, client: ExecutionClient, intent: OrderIntent) -> Execution | str | None:
        cid = intent.client_order_id
        self.orders[cid] = Order(intent)
        self._waiting[cid] = None
        try:
            await client.submit(intent)
        except Exception as exc:
            # The venue never took it: nothing was placed, nothing changes.
            self.orders.pop(cid, None)
            self._openings.pop(cid, None)
            self._closing.discard(intent.position_key)
            if intent.purpose is OrderPurpose.REDUCE:
                self._trimming.discard(intent.position_key)
                self._exit_when_trimmed(intent.position_key, intent.created_at.timestamp())
            self._waiting.pop(cid, None)
            log.exception("order %s not placed", cid)
            return f"order not placed: {type(exc).__name__}: {exc}"
        return self._waiting.pop(cid, None)

    def on_order_event(self, event: OrderEvent) -> None:
        """An execution client's answer about one of this desk's orders."""
        cid = event.client_order_id
        order = self.orders.get(cid)
        if order is None:
            log.warning("event for an unknown order %s: %s", cid, type(event).__name__)
            return
        order = self.orders[cid] = order.apply(event)
        if not order.status.terminal:
            return
        del self.orders[cid]
        opening = self._openings.pop(cid, None)
        if opening is not None:
            result = self._opened(order, opening)
        elif order.intent.purpose is OrderPurpose.REDUCE:
            result = self._reduced(order)
        else:
            result = self._closed(order)
        if cid in self._waiting:
            self._waiting[cid] = result  # `_submit` hands it to its caller
        elif isinstance(result, Execution):
            self._late(result, opening.decision if opening is not None else None)

    def _late(self, execution: Execution, decision: DecisionRef | None) -> None:
        """A fill that came after the order's caller moved on: store it on its own."""
        now = execution.order.fills[-1].filled_at.timestamp()
        if execution.order.intent.purpose is not OrderPurpose.OPEN:
            self._store_closes([execution], now)
            return
        snapshot = self.snapshot(now, "FILL")
        future = self.writer.submit(None, None, snapshots=[snapshot], opens=[(decision, execution)])
        asyncio.wrap_future(future).add_done_callback(partial(self._late_opened, execution))

    def _late_opened(self, execution: Execution, future: asyncio.Future[Any]) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("late opening not stored: %s", future.exception())
            self.account.undo_open(execution.position)
            return
        self.opened(execution)

    # snapshots and mode -------------------------------------------------------------------------
    def snapshot(self, now: float, reason: str) -> PortfolioSnapshot:
        return self.account.snapshot(now, reason)

    def check_mode(self, mode: TradingMode, confirmation: str | None, credentials: bool) -> None:
        if mode == self.mode:
            return
        if mode is TradingMode.LIVE:
            if confirmation != CONFIRMATION:
                raise ModeError(f"switching to LIVE needs the confirmation phrase {CONFIRMATION!r}")
        if mode is not TradingMode.PAPER and not credentials:
            where = "HELIOS_VALR_API_KEY and _SECRET, or HELIOS_VALR_SECRETS_FILE"
            raise ModeError(f"switching to {mode} needs VALR credentials ({where})")
        if self.account.positions:
            count = len(self.account.positions)
            raise ModeError(f"{count} {self.mode} position(s) open: close them before switching to {mode}")

    def mode_record(self, mode: TradingMode, reason: str, now: float) -> ModeRecord:
        return ModeRecord(mode=mode, previous=self.mode, reason=reason, at=as_datetime(now))


def _position(execution: Execution) -> dict[str, Any]:
    p, fills = execution.position, execution.order.fills
    return {
        "key": p.key,
        "pair": p.pair,
        "side": p.side,
        "quantity": p.quantity,
        "price": execution.order.average_price if fills else None,
        "reason": p.close_reason,
        "realised_pnl": p.realised_pnl,
    }
