"""The account: cash, open positions, marks, and the portfolio figures the guard reads.

A position commits `margin` of cash and holds `margin * leverage` of exposure. Cash never
goes negative: an entry needs its margin and fee in cash, and a close pays back at most what
the position still holds (margin plus P&L less the fee, never below zero; a loss beyond the
margin is the exchange's, as a liquidation is). Equity is cash plus, for every open position,
its margin and its unrealised P&L at the latest mark.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from helios_core.risk.limits import Exposure, PortfolioView
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import CloseReason, PositionStatus
from helios_core.trading.orders import require_aware
from helios_core.trading.position import Position, gross_pnl

DAY = 86_400


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """The account's figures at `at`; `reason` says what took it (FILL, PERIODIC, ...)."""

    at: datetime
    cash: float
    margin: float
    unrealised: float
    equity: float
    peak: float
    drawdown: float
    day_start_equity: float
    daily_pnl: float
    open_positions: int
    reason: str

    def __post_init__(self) -> None:
        require_aware("at", self.at)


class Account:
    def __init__(self, capital: float) -> None:
        if not capital > 0:
            raise ValueError(f"the account needs positive capital, got {capital}")
        self.capital = capital
        self.cash = capital
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, float] = {}
        self.marked: dict[str, float] = {}  # when each mark was taken
        self.peak = capital
        self.day = -1  # the UTC day (epoch days) `day_start_equity` belongs to
        self.day_start_equity = capital
        self.restored_at: float | None = None  # the time of the snapshot it was rebuilt from
        self._undo_later: dict[str, list[tuple[Position, Position]]] = {}  # trims whose undo waits (undo_reduce)

    # figures --------------------------------------------------------------------------------
    @property
    def margin(self) -> float:
        return sum(p.margin for p in self.positions.values())

    @property
    def unrealised(self) -> float:
        return sum(gross_pnl(p, self.marks.get(p.pair, p.entry_price)) for p in self.positions.values())

    @property
    def equity(self) -> float:
        return self.cash + self.margin + self.unrealised

    @property
    def drawdown(self) -> float:
        return max(0.0, (self.peak - self.equity) / self.peak) if self.peak > 0 else 0.0

    @property
    def known_at(self) -> float | None:
        """The latest time a price or the ledger told the account; None when nothing has."""
        times = [*self.marked.values(), *([] if self.restored_at is None else [self.restored_at])]
        return max(times, default=None)

    def view(self, sectors: dict[str, str]) -> PortfolioView:
        exposures = tuple(
            Exposure(p.pair, sectors.get(p.pair, "crypto"), p.margin, p.leverage) for p in self.positions.values()
        )
        return PortfolioView(self.equity, self.peak, self.day_start_equity, exposures)

    # changes --------------------------------------------------------------------------------
    def mark(self, pair: str, price: float, now: float) -> None:
        """A new price: the peak follows equity up, and a new UTC day resets the day's start.
        A price older than the pair's latest (history replayed after a restart) moves nothing."""
        if now < self.marked.get(pair, -math.inf):
            return
        self.marked[pair] = now
        self.marks[pair] = price
        self.roll(now)
        self.peak = max(self.peak, self.equity)

    def roll(self, now: float) -> None:
        day = int(now // DAY)
        if day > self.day:  # forward only: an old timestamp must not reopen yesterday
            self.day = day
            self.day_start_equity = self.equity

    def open(self, position: Position) -> None:
        cost = position.margin + position.entry_fee
        if cost > self.cash:
            raise ValueError(f"position {position.key} needs {cost:.2f} but the account holds {self.cash:.2f} cash")
        if position.key in self.positions:
            raise ValueError(f"position {position.key} is already open")
        self.cash -= cost
        self.positions[position.key] = position
        self.marks.setdefault(position.pair, position.entry_price)
        self.peak = max(self.peak, self.equity)

    def reset_peak(self) -> None:
        self.peak = self.equity

    def undo_open(self, position: Position) -> None:
        """Forget an opening the ledger did not store: the account must not hold what it cannot show."""
        if self.positions.pop(position.key, None) is not None:
            self.cash += position.margin + position.entry_fee

    def undo_close(self, closed: Position) -> None:
        """Reopen a position whose close the ledger did not store; its exit triggers again."""
        paid = (closed.realised_pnl or 0.0) - closed.reduced_pnl + closed.margin + closed.entry_fee
        self.cash -= paid
        self.positions[closed.key] = replace(
            closed,
            status=PositionStatus.OPEN,
            exit_price=None,
            closed_at=None,
            close_reason=None,
            exit_fee=0.0,
            realised_pnl=None,
        )
        self._undo_waiting(closed.key)

    def payout(self, position: Position, price: float, fee: float) -> float:
        return max(0.0, position.margin + gross_pnl(position, price) - fee)

    def close(self, key: str, price: float, fee: float, reason: CloseReason, at: datetime) -> Position:
        position = self.positions.pop(key)
        paid = self.payout(position, price, fee)
        self.cash += paid
        closed = replace(
            position,
            status=PositionStatus.CLOSED,
            exit_price=price,
            closed_at=at,
            close_reason=reason,
            exit_fee=fee,
            realised_pnl=position.reduced_pnl + paid - position.margin - position.entry_fee,
        )
        self.peak = max(self.peak, self.equity)
        return closed

    def reduce(self, key: str, quantity: float, price: float, fee: float) -> Position:
        """Sell `quantity` of an open position (a trim): that share of its margin and entry fee
        goes with it, and what it realised is kept on the position (`reduced_pnl`). A trim of the
        whole quantity or more is a close, not a trim (ValueError)."""
        position = self.positions[key]
        if not 0 < quantity < position.quantity:
            raise ValueError(
                f"a trim of {position.key} must sell less than its {position.quantity:.8g}, got {quantity:.8g}"
            )
        share = quantity / position.quantity
        part = replace(position, quantity=quantity, margin=position.margin * share)
        paid = self.payout(part, price, fee)
        self.cash += paid
        kept = 1.0 - share
        reduced = replace(
            position,
            quantity=position.quantity - quantity,
            margin=position.margin * kept,
            entry_fee=position.entry_fee * kept,
            reduced_pnl=position.reduced_pnl + paid - part.margin - position.entry_fee * share,
        )
        self.positions[key] = reduced
        self.peak = max(self.peak, self.equity)
        return reduced

    def undo_reduce(self, before: Position, after: Position) -> None:
        """Put back a trim the ledger did not store. When the position has changed since (a later
        trim, or its close), the undo waits until that change is undone too, whatever order the
        undos come in; if the ledger stored the later change, its row holds this trim's result
        (quantity, margin, reduced_pnl) and the account already agrees with it."""
        if self.positions.get(after.key) != after:
            self._undo_later.setdefault(after.key, []).append((before, after))
            return
        self.cash -= after.reduced_pnl - before.reduced_pnl + (before.margin - after.margin)
        self.cash -= before.entry_fee - after.entry_fee
        self.positions[before.key] = before
        self._undo_waiting(before.key)

    def _undo_waiting(self, key: str) -> None:
        waiting = self._undo_later.get(key, [])
        ready = next((pair for pair in waiting if pair[1] == self.positions.get(key)), None)
        if ready is not None:
            waiting.remove(ready)
            if not waiting:
                del self._undo_later[key]
            self.undo_reduce(*ready)

    def figures(self) -> dict[str, Any]:
        """The portfolio now, as a snapshot records it."""
        equity = self.equity
        return {
            "cash": self.cash,
            "margin": self.margin,
            "unrealised": self.unrealised,
            "equity": equity,
            "peak": self.peak,
            "drawdown": self.drawdown,
            "day_start_equity": self.day_start_equity,
            "daily_pnl": equity - self.day_start_equity,
            "open_positions": len(self.positions),
        }

    def snapshot(self, now: float, reason: str) -> PortfolioSnapshot:
        self.roll(now)
        return PortfolioSnapshot(at=as_datetime(now), reason=reason, **self.figures())

    # recovery -------------------------------------------------------------------------------
    @classmethod
    def rebuild(
        cls,
        capital: float,
        realised: float,
        open_positions: Iterable[Position],
        latest: PortfolioSnapshot | None,
    ) -> Account:
        """The account as the ledger left it. Cash comes from the positions (capital plus every
        closed position's net P&L, less what the open ones committed), never from a snapshot, so
        a snapshot lost to a crash cannot skew it; the peak, the day and the day's starting
        equity come from the latest snapshot, since no position row holds them. The first price
        of a later day starts that day, as it would have without the restart."""
        account = cls(capital)
        account.cash = capital + realised
        for position in open_positions:
            account.open(position)  # marks start at the entry price until the stream speaks
        if latest is not None:
            account.restored_at = latest.at.timestamp()
            if math.isfinite(latest.peak):
                account.peak = max(latest.peak, account.equity)
            account.day = int(latest.at.timestamp() // DAY)
            account.day_start_equity = latest.day_start_equity
        else:
            account.day_start_equity = account.equity
        return account
