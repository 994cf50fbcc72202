"""Each pair's GARCH volatility model, refitted off the event loop.

A fit is asked for at a point of the pair's events (the end of its warm-up, then every
`HELIOS_RISK_REFIT_S` on the pair's own clock) and installed at the pair's next bar, which waits
for it if the fitter is not done: where a fit lands in the pair's sequence never depends on how
fast the fitter process was, so a replay is the same on every machine.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial

from helios_live.clock import TimeEvent, TimerCallback
from helios_live.kernel.pair import Fit, PairState
from helios_live.trading.desk import Desk
from helios_live.trading.volatility import Fitter

Record = Callable[..., Awaitable[None]]
Guard = Callable[[str, Callable[[TimeEvent], None]], TimerCallback]


class Refits:
    def __init__(
        self, fitter: Fitter, desk: Desk, every_s: float, record: Record, guard: Guard, errors: Counter[str]
    ) -> None:
        self.fitter, self.desk, self.every_s = fitter, desk, every_s
        self.record, self.guard, self.errors = record, guard, errors

    def ask(self, state: PairState) -> None:
        """Start a fit on the returns seen so far; it is installed at the pair's next bar."""
        returns, seen = self.desk.trader.vol[state.pair].fit_input()
        state.fit = Fit(asyncio.ensure_future(self.fitter.fit(returns)), seen)

    async def now(self, state: PairState, at: float) -> None:
        """Fit and install at once (the end of a warm-up, at `at`), then refit every interval."""
        self.ask(state)
        await self.install(state)
        callback = self.guard(f"refit-{state.pair}", partial(self._due, state))
        state.timers.set_timer("refit", self.every_s, callback, start_s=at + self.every_s)

    def _due(self, state: PairState, event: TimeEvent) -> None:
        state.refit_due = True
        self.ask_if_due(state)

    def ask_if_due(self, state: PairState) -> None:
        """A refit that fell due while the pair was catching up (or fitting) is asked for at its
        first event after that, not skipped for a whole interval."""
        if state.refit_due and state.fit is None and state.catchup is None:
            state.refit_due = False
            self.ask(state)

    async def install(self, state: PairState) -> None:
        fit, state.fit = state.fit, None
        assert fit is not None  # noqa: S101 -- the callers checked
        vol = self.desk.trader.vol[state.pair]
        try:
            model = await fit.task
        except Exception as exc:  # noqa: BLE001 -- a dead fitter must not stop the pair; the old model serves
            self.errors["volatility_fit"] += 1
            await self.record("VOLATILITY_FIT_FAILED", pair=state.pair, error=f"{type(exc).__name__}: {exc}")
            return
        vol.install(model, fit.seen)
        await self.record(
            "VOLATILITY_FIT",
            pair=state.pair,
            source=model.source,
            reason=model.reason,
            returns=model.n,
            daily_vol=finite(vol.daily_vol),
            regime=vol.regime,
            alpha=finite(model.alpha),
            beta=finite(model.beta),
        )

    def cancel(self, states: dict[str, PairState]) -> None:
        for state in states.values():
            if state.fit is not None:
                state.fit.task.cancel()
                state.fit = None


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
