"""The engine's trading desk: the trader, the trading mode, position monitoring on every price,
the emergency close, volatility refits off the event loop, and recovery from the ledger.

Positions are watched on every trade the stream delivers (and on the clock's ticks, for
time-outs), not on a poll. A close goes to the ledger as one unit with its order, fill and
the portfolio snapshot after it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from helios_core.errors import HeliosError
from helios_core.risk.garch import VolModel, fit
from helios_live.clock import as_datetime
from helios_live.ledger.records import ModeRecord, TradeRecord
from helios_live.stream.events import Book
from helios_live.trading.account import DAY, Account
from helios_live.trading.trader import Trader, TradingConfig
from helios_live.trading.volatility import INTERVAL_S

if TYPE_CHECKING:
    from helios_live.engine.engine import Engine

log = logging.getLogger("helios.live")
CONFIRMATION = "I_CONFIRM_LIVE_TRADING"  # the design's phrase (section 31)


class ModeError(HeliosError):
    """A mode switch the desk refuses; the message says why."""


class PositionError(HeliosError):
    """A command on a position that is not open."""


class Desk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = TradingConfig.from_settings(engine.settings)
        self.trader = Trader(self.config, engine.pairs)
        self.mode = "PAPER"
        self.decided_until: dict[str, float] = {}
        self.fills: Counter[str] = Counter()
        self.fill_latencies: deque[float] = deque(maxlen=10_000)  # seconds, closing message -> committed entry
        self.fitted_at: dict[str, float] = {}
        self.last_snapshot = -math.inf
        self._fits: Executor | None = None

    # recovery (on the ledger's thread) ------------------------------------------------------
    def restore(self, pairs: tuple[str, ...]) -> dict[str, Any]:
        """Rebuild the mode, the account and open positions from the ledger, as a crash left them."""
        ledger = self.engine.ledger
        self.mode = ledger.mode()
        now = self._now()
        totals = ledger.account()
        account = Account.rebuild(
            self.config.capital,
            totals["realised"],
            ledger.open_positions(),
            ledger.latest_snapshot(),
            ledger.first_snapshot_since(as_datetime(now - now % DAY)),
            now,
        )
        self.trader = Trader(self.config, pairs, account)
        self.decided_until = {p: ts.timestamp() for p in pairs if (ts := ledger.decided_until(p)) is not None}
        return {
            "mode": self.mode,
            "open_positions": len(account.positions),
            "closed_positions": int(totals["closed"]),
            "cash": round(account.cash, 2),
            "equity": round(account.equity, 2),
        }

    # prices ---------------------------------------------------------------------------------
    async def on_price(self, pair: str, price: float, now: float, book: Book | None) -> None:
        """A trade, bucket or summary price (or, with price 0, a tick of the clock)."""
        trader = self.trader
        if math.isnan(now):
            now = self._now()
        trades = trader.exits(pair, price, now, book, self.mode)
        if trades:
            self.submit(trades, now)
        limit = self.config.limits.max_drawdown
        if (trades or trader.account.positions) and trader.account.drawdown >= limit and not self.engine.emergency_stop:
            await self.engine.set_emergency_stop(
                True, f"drawdown {trader.account.drawdown:.2%} reached the {limit:.0%} hard stop"
            )

    def close(self, key: str, reason: str) -> TradeRecord:
        account = self.trader.account
        if key not in account.positions:
            raise PositionError(f"position {key} is not open")
        now = self._now()
        state = self.engine.states.get(account.positions[key].pair)
        trade = self.trader.close(key, reason, now, state.book if state else None, self.mode)
        self.submit([trade], now)
        return trade

    def close_all(self, reason: str) -> list[TradeRecord]:
        return [self.close(key, reason) for key in list(self.trader.account.positions)]

    def submit(self, trades: list[TradeRecord], now: float) -> None:
        snapshot = self.trader.snapshot(now, "FILL")
        future = self.engine.ledger_writer.submit(None, None, trades, [snapshot])
        asyncio.wrap_future(future).add_done_callback(partial(self._stored, trades))

    def opened(self, trade: TradeRecord) -> None:
        self.fills["OPEN"] += 1
        self.engine.broadcaster.publish({"type": "position", "event": "OPEN", **_position(trade)})

    def _stored(self, trades: list[TradeRecord], future: asyncio.Future[Any]) -> None:
        if future.exception() is not None:
            self.engine.errors["ledger"] += 1
            log.error("closes not stored: %s", future.exception())
            for trade in trades:  # held again in memory, as in the ledger: the exit will trigger again
                self.trader.account.undo_close(trade.position)
            return
        for trade in trades:
            self.fills[trade.position.close_reason or "CLOSE"] += 1
            self.engine.broadcaster.publish({"type": "position", "event": "CLOSE", **_position(trade)})

    def snapshot_due(self) -> None:
        now = self.engine.clock.now()
        if math.isnan(now) or now - self.last_snapshot < self.engine.settings.portfolio_snapshot_s:
            return
        self.last_snapshot = now
        self.engine.ledger_writer.submit(None, None, (), [self.trader.snapshot(now, "PERIODIC")])

    def _now(self) -> float:
        now = self.engine.clock.now()
        return time.time() if math.isnan(now) else now

    # mode -----------------------------------------------------------------------------------
    def check_mode(self, mode: str, confirmation: str | None) -> None:
        if mode == self.mode:
            return
        if mode == "LIVE":
            if confirmation != CONFIRMATION:
                raise ModeError(f"switching to LIVE needs the confirmation phrase {CONFIRMATION!r}")
            if not self.engine.settings.exchange_credentials:
                raise ModeError("switching to LIVE needs exchange credentials (HELIOS_VALR_API_KEY, _SECRET)")
        if self.trader.account.positions:
            count = len(self.trader.account.positions)
            raise ModeError(f"{count} {self.mode} position(s) open: close them before switching to {mode}")

    def mode_record(self, mode: str, reason: str) -> ModeRecord:
        return ModeRecord(mode=mode, previous=self.mode, reason=reason, at=as_datetime(time.time()))

    # volatility -----------------------------------------------------------------------------
    async def refit_loop(self, poll_s: float = 1.0) -> None:
        """Fit each pair once it has caught up, then every `risk_refit_s` of the engine's clock."""
        while True:
            await asyncio.sleep(poll_s)
            now = self.engine.clock.now()
            if math.isnan(now):
                continue
            for pair, state in self.engine.states.items():
                due = now - self.fitted_at.get(pair, -math.inf) >= self.engine.settings.risk_refit_s
                if state.catchup is None and due and not self.trader.vol[pair].fitting:
                    await self.refit(pair)

    async def refit(self, pair: str) -> None:
        """Fit `pair`'s volatility model in the background executor and install it."""
        vol = self.trader.vol[pair]
        now = self.engine.clock.now()
        self.fitted_at[pair] = self._now() if math.isnan(now) else now
        returns, seen = vol.fit_input()
        vol.fitting = True
        try:
            model: VolModel = await asyncio.get_running_loop().run_in_executor(
                self._executor(), partial(fit, returns, INTERVAL_S)
            )
        except Exception as exc:  # noqa: BLE001 -- a dead fitter must not stop the pair; the old model serves
            self._drop_executor()  # a broken pool is replaced on the next fit
            self.engine.errors["volatility_fit"] += 1
            await self.engine.record("VOLATILITY_FIT_FAILED", pair=pair, error=f"{type(exc).__name__}: {exc}")
            return
        finally:
            vol.fitting = False
        vol.install(model, seen)
        await self.engine.record(
            "VOLATILITY_FIT",
            pair=pair,
            source=model.source,
            reason=model.reason,
            returns=model.n,
            daily_vol=finite_or_none(vol.daily_vol),
            regime=vol.regime,
            alpha=finite_or_none(model.alpha),
            beta=finite_or_none(model.beta),
        )

    def prepare(self) -> None:
        """Start the fitter now: a spawned process takes seconds to import its libraries, which
        the first fit (at the end of the warm-up, before the first decision) should not wait for."""
        self._executor().submit(_ready)

    def _executor(self) -> Executor:
        if self._fits is None:
            if self.engine.settings.risk_fit_process:
                # A fit holds the GIL for much of its run: in a thread it would stall the event loop.
                self._fits = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with,
                    initargs=(os.getpid(),),
                )
            else:
                self._fits = ThreadPoolExecutor(1, thread_name_prefix="garch")
        return self._fits

    def shutdown(self) -> None:
        if self._fits is not None:
            self._fits.shutdown(wait=False, cancel_futures=True)
            self._fits = None

    def _drop_executor(self) -> None:
        # Other pairs' fits may be queued on it: let them finish (or fail) rather than cancel them.
        if self._fits is not None:
            self._fits.shutdown(wait=False, cancel_futures=False)
            self._fits = None


def _exit_with(parent: int) -> None:
    """In the fitter: leave when the service is gone. A service killed outright (SIGKILL, OOM)
    cannot shut its pool down, and the fitter would otherwise live on as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ready() -> bool:
    import arch  # noqa: F401, PLC0415 -- what the fitter process spends its start-up on

    return True


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _position(trade: TradeRecord) -> dict[str, Any]:
    p, fill = trade.position, trade.fill
    return {
        "key": p.key,
        "pair": p.pair,
        "side": p.side,
        "quantity": p.quantity,
        "price": fill.price if fill else None,
        "reason": p.close_reason,
        "realised_pnl": p.realised_pnl,
    }
