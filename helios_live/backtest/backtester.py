"""The backtester: a model through the kernel over recorded candles, under a `TestClock`, with
the simulated exchange of `helios_live.execution.simulated` and a ledger of its own.

Per base candle, in time order across pairs:

1. the clock reaches the candle's start: the candles that end there close, and the kernel
   decides on them (features, prediction, sizing, approval, every portfolio limit);
2. the orders waiting for the pair's next candle fill at this candle's open plus slippage;
3. a stop, take-profit or liquidation touched inside the candle is resolved on the finer (1m)
   candles within it when there are any, else on the candle itself; when one candle touches
   both a stop and a take-profit, the stop is taken;
4. the candle goes to the kernel, which marks the positions at its close and times them out.

The data ends with the open positions closed at the last close (`END_OF_TEST`) and the orders
still waiting cancelled. The same inputs give the same ledger, row for row, and the same figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helios_core.decision import Step
from helios_core.errors import HeliosError
from helios_core.evaluation.metrics import Trade
from helios_core.market import Bucket, Tick
from helios_core.timeframes import Timeframe
from helios_core.trading.enums import CloseReason, PositionSide
from helios_core.trading.position import Position
from helios_live.approval.approver import Approver
from helios_live.approval.step import Approval
from helios_live.backtest.replay import ReplayDataClient
from helios_live.clock import TestClock
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded
from helios_live.execution.simulated import CandleExecutionClient
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from helios_live.trading.allocation import Allocator

log = logging.getLogger("helios.backtest")
Progress = Callable[[str], None]


class BacktestError(HeliosError):
    """A backtest that cannot run (no data in its period, a ledger that is not new, ...)."""


@dataclass(frozen=True)
class Market:
    """What a backtest replays: each pair's base candles (warm-up included) and, when the base
    is coarser than 1m, the 1m candles that resolve what happened inside a base candle."""

    timeframe: str  # the base, the model's
    base: Mapping[str, pd.DataFrame]
    fine: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return Timeframe.parse(self.timeframe).seconds


@dataclass(frozen=True)
class Simulation:
    """What the kernel did: the equity at each base close, the closed trades, and counts."""

    times: np.ndarray
    equity: np.ndarray
    trades: list[Trade]
    decisions: int
    orders_cancelled: int
    errors: dict[str, int]
    scored: list[tuple[str, float, str, float, bool]]  # pair, candle ts, prediction, confidence, correct
    fills: str = "candles"  # the fill model: "candles" (next open) or "paper" (book, else last trade)
    approval: dict[str, Any] | None = None  # Tier 4's counts (verdicts, failures); None without the step
    allocation: dict[str, Any] | None = None  # Tier 5 allocation's state at the end; None without it


@dataclass(frozen=True, slots=True)
class _Candle:
    start: float
    open: float
    high: float
    low: float
    close: float
    volume: float


def _candles(frame: pd.DataFrame) -> list[_Candle]:
    starts = (frame["ts"].dt.as_unit("ns").astype("int64") // 1_000_000_000).tolist()
    columns = (frame[c].astype("float64").tolist() for c in ("open", "high", "low", "close", "volume"))
    return [_Candle(float(s), o, h, low, c, v) for s, o, h, low, c, v in zip(starts, *columns, strict=True)]


def closed_trade(position: Position, trimmed: tuple[float, float] = (0.0, 0.0)) -> Trade:
    """The trade a closed position made; `trimmed`: what its trims sold and paid, so that its size
    and fees are the whole position's, not only what was left to close (the row keeps that)."""
    assert position.closed_at is not None and position.exit_price is not None  # noqa: S101 -- closed
    sold, trim_fees = trimmed
    whole = position.quantity + sold
    scale = whole / position.quantity if position.quantity > 0 else 1.0  # margin and entry fee went pro rata
    return Trade(
        pair=position.pair,
        side=str(position.side),
        opened_at=position.opened_at.timestamp(),
        closed_at=position.closed_at.timestamp(),
        entry_price=position.entry_price,
        exit_price=position.exit_price,
        quantity=whole,
        margin=position.margin * scale,
        leverage=position.leverage,
        fees=position.entry_fee * scale + position.exit_fee + trim_fees,
        pnl=position.realised_pnl or 0.0,
        reason=str(position.close_reason),
    )


def touched(position: Position, candle: _Candle, taker_fee: float) -> tuple[CloseReason, float] | None:
    """What closes `position` inside `candle`, and at what price: the stop first (also when the
    take-profit was touched in the same candle: which came first is unknown, so the worse is
    assumed), then the take-profit, then liquidation. A candle that opened beyond a level fills
    at its open."""
    long = position.side is PositionSide.LONG
    stop, target = position.stop_loss_price, position.take_profit_price
    adverse, favourable = (candle.low, candle.high) if long else (candle.high, candle.low)
    if _below(long, adverse, stop):
        return CloseReason.STOP_LOSS, candle.open if _below(long, candle.open, stop) else stop
    if _below(long, target, favourable):
        return CloseReason.TAKE_PROFIT, candle.open if _below(long, target, candle.open) else target
    liquidation = liquidation_price(position, taker_fee)
    if liquidation is not None and _below(long, adverse, liquidation):
        return CloseReason.LIQUIDATION, candle.open if _below(long, candle.open, liquidation) else liquidation
    return None


def _below(long: bool, a: float, b: float) -> bool:
    """`a` at or past `b` in the long side's losing direction (at or below; at or above for a short)."""
    return a <= b if long else a >= b


def liquidation_price(position: Position, taker_fee: float) -> float | None:
    """The price at which margin plus P&L, less the fee of closing, reaches zero (exit_reason's
    rule); None when no price reaches it (a long whose fee-less margin covers a fall to zero)."""
    q, entry, sign = position.quantity, position.entry_price, position.side.sign
    # margin + sign*(p - entry)*q - p*q*fee = 0  ->  p = (sign*entry*q - margin) / (q*(sign - fee))
    denominator = q * (sign - taker_fee)
    if denominator == 0:
        return None
    price = (sign * entry * q - position.margin) / denominator
    return price if price > 0 else None


class Backtester:
    def __init__(
        self,
        settings: HeliosSettings,
        market: Market,
        model_version: str,
        *,
        lake: Lake | None = None,
        approval: Step | None = None,
        approver: Approver | None = None,
        allocator: Allocator | None = None,
    ):
        """`approval` replaces Tier 4's step whole, `approver` is the one it asks (by default the
        settings'): a comparison runs the same backtest with, without and against random vetoes.
        `allocator` computes Tier 5's targets at each daily check on the backtest's clock, from
        what the backtest has seen by then; without one the backtest runs without allocation."""
        allocation = settings.allocation.model_copy(update={"enabled": allocator is not None})
        settings = settings.model_copy(update={"allocation": allocation})
        self.allocator = allocator
        self.settings = settings
        self.market = market
        self.model_version = model_version
        self.lake = lake
        self.approval, self.approver = approval, approver

    async def run(self, start: float, end: float, progress: Progress | None = None) -> Simulation:
        """Decide every base candle that closes in (start, end]; the ledger at the settings'
        database URL must be new."""
        settings, market = self.settings, self.market
        ledger = Ledger(settings.resolved_database_url)
        ledger.migrate()
        if ledger.predictions(limit=1).items:
            ledger.close()
            raise BacktestError(f"{ledger.url} holds decisions already: a backtest needs a ledger of its own")
        clock = TestClock(start_s=start)
        recorded = Recorded(
            candles={p: f for p, f in market.base.items() if p in settings.live.pairs}, timeframe=market.timeframe
        )
        history = ReplayDataClient(recorded, clock, start=start, summary_every_s=None, from_trades=False)
        kernel = Kernel(
            settings, ledger, Registry(settings.models_root), clock, history,
            lake=self.lake, lockstep=True, model_version=self.model_version, health=False,
            approval=self.approval, approver=self.approver, allocator=self.allocator,
        )  # fmt: skip
        desk = kernel.desk
        exchange = CandleExecutionClient(desk.config.fills, desk.cash)
        desk.connect(desk.mode, exchange)  # replaces paper's fill-at-once
        pairs = tuple(p for p in settings.live.pairs if p in market.base)
        schedule = self._schedule(pairs, start, end)
        if not schedule:
            ledger.close()
            raise BacktestError(f"no candles of {list(settings.live.pairs)} between the backtest's start and end")
        fine = {p: _candles(market.fine[p]) for p in pairs if p in market.fine}
        fine_at = {p: np.array([c.start for c in cs]) for p, cs in fine.items()}
        times: list[float] = []
        equity: list[float] = []
        try:
            await kernel.start(pairs, connect=False)
            await kernel.set_auto_trading(True)
            last: dict[str, _Candle] = {}
            report_every = max(1, len(schedule) // 20)
            for i, (at, group) in enumerate(schedule):
                await kernel.on_event(Tick(at))  # the candles ending here close: decisions
                for pair, candle in group:
                    exchange.on_open(pair, candle.open, at)
                    inside = self._inside(fine.get(pair), fine_at.get(pair), candle)
                    await self._exits(kernel, exchange, pair, inside)
                    event = Bucket(pair, int(candle.start), market.step, candle.open, candle.high, candle.low,
                                   candle.close, candle.volume)  # fmt: skip
                    await kernel.on_event(event)
                    last[pair] = candle
                times.append(at + market.step)
                equity.append(desk.account.equity)
                if progress is not None and (i + 1) % report_every == 0:
                    progress(f"backtest {100 * (i + 1) / len(schedule):.0f}%: {as_iso(at + market.step)}, "
                             f"equity {desk.account.equity:,.2f}")  # fmt: skip
            final = schedule[-1][0] + market.step
            await kernel.on_event(Tick(final))  # the last candles close and are decided
            cancelled = await self._finish(kernel, exchange, last, final)
            await kernel.drain()
            equity[-1] = desk.account.equity  # after the closing fills at the last close
            errors = dict(kernel.errors + desk.errors)
            decisions = sum(s.predictions for s in kernel.states.values())
            step = kernel.approval
            approval = step.snapshot(final) if isinstance(step, Approval) else None
            allocated = kernel.allocation.status() if self.allocator is not None else None
        finally:
            await kernel.close()
        try:
            trimmed = ledger.trimmed()
            trades = [closed_trade(p, trimmed.get(p.key, (0.0, 0.0))) for p in ledger.closed_positions()]
            scored = [(p, ts.timestamp(), label, conf, ok) for p, ts, label, conf, ok in ledger.scored()]
        finally:
            ledger.close()
        if "ledger" in errors:
            raise BacktestError(f"the ledger refused writes during the backtest: {errors}")
        return Simulation(
            np.asarray(times, dtype="float64"), np.asarray(equity, dtype="float64"), trades, decisions,
            cancelled, errors, scored, approval=approval, allocation=allocated,
        )  # fmt: skip

    def _schedule(
        self, pairs: tuple[str, ...], start: float, end: float
    ) -> list[tuple[float, list[tuple[str, _Candle]]]]:
        """Base candles starting at or after `start` and closing by `end`, grouped by start."""
        by_start: dict[float, list[tuple[str, _Candle]]] = {}
        for pair in pairs:
            for candle in _candles(self.market.base[pair]):
                if start <= candle.start and candle.start + self.market.step <= end:
                    by_start.setdefault(candle.start, []).append((pair, candle))
        return sorted(by_start.items())

    def _inside(self, fine: list[_Candle] | None, starts: np.ndarray | None, candle: _Candle) -> list[_Candle]:
        if not fine or starts is None:
            return [candle]
        lo = int(np.searchsorted(starts, candle.start, side="left"))
        hi = int(np.searchsorted(starts, candle.start + self.market.step, side="left"))
        return fine[lo:hi] or [candle]

    async def _exits(self, kernel: Kernel, exchange: CandleExecutionClient, pair: str, inside: list[_Candle]) -> None:
        """Close what the candle's path touched, each at its trigger price."""
        desk = kernel.desk
        fee = desk.config.fills.taker_fee
        for candle in inside:
            for position in [p for p in desk.account.positions.values() if p.pair == pair]:
                if position.opened_at.timestamp() > candle.start or exchange.closing(position.key):
                    continue
                hit = touched(position, candle, fee)
                if hit is None:
                    continue
                reason, price = hit
                exchange.trigger(position.key, price)
                await desk.close(position.key, reason, candle.start)

    async def _finish(
        self, kernel: Kernel, exchange: CandleExecutionClient, last: dict[str, _Candle], at: float
    ) -> int:
        """The data ended: cancel the openings still waiting, fill the waiting closes and close
        every open position at the pair's last close."""
        openings = [cid for cid, intent in exchange.pending.items() if intent.purpose == "OPEN"]
        for cid in openings:
            await exchange.cancel(cid)
        for pair, candle in last.items():
            exchange.on_open(pair, candle.close, at)
        for position in list(kernel.desk.account.positions.values()):
            exchange.trigger(position.key, last[position.pair].close)
            await kernel.desk.close(position.key, CloseReason.END_OF_TEST, at)
        return len(openings)


def as_iso(ts: float) -> str:
    return str(pd.Timestamp(ts, unit="s", tz="UTC").isoformat())
