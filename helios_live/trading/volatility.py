"""Per-pair volatility for Tier 3: 5-minute log returns from closed base candles (1m or 5m), a
GARCH(1,1) model refitted off the event loop, and the one-step variance moved by the GARCH
recursion on every new return in between.

A refit sees the returns up to the moment it was asked for; the returns that arrive while it
runs are replayed through the new model when it lands, so no return is counted twice or missed.
Fits run in a `Fitter`: a process of their own (a fit holds the GIL for much of its run, and in
a thread it would stall the event loop), or a thread where a process is not wanted (tests).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import numpy as np

from helios_core.bars import STEP
from helios_core.features.streaming import Bar
from helios_core.risk.garch import VarianceState, VolModel, classify, daily_vol, fit

INTERVAL_S = 300  # the design's 5-minute returns


class Returns:
    """The latest `window` 5m returns and their bucket starts, as numpy arrays: the portfolio
    guard aligns two pairs' returns on every decision, and arrays built from tuples each time
    cost milliseconds a decision (a backtest's 5m decisions each see a new return)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._buckets = np.empty(2 * window, dtype=np.int64)
        self._values = np.empty(2 * window, dtype=np.float64)
        self._end = 0

    def append(self, bucket: int, value: float) -> None:
        if self._end == len(self._buckets):  # full: keep the newest window - 1, amortised O(1)
            keep = self.window - 1
            self._buckets[:keep] = self._buckets[self._end - keep : self._end]
            self._values[:keep] = self._values[self._end - keep : self._end]
            self._end = keep
        self._buckets[self._end], self._values[self._end] = bucket, value
        self._end += 1

    @property
    def buckets(self) -> np.ndarray:
        return self._buckets[max(0, self._end - self.window) : self._end]

    @property
    def values(self) -> np.ndarray:
        return self._values[max(0, self._end - self.window) : self._end]

    def __len__(self) -> int:
        return min(self._end, self.window)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.buckets.tolist(), self.values.tolist(), strict=True)


class PairVolatility:
    def __init__(self, window: int) -> None:
        self.returns = Returns(window)  # (5m bucket start, log return)
        self.total = 0  # returns ever seen, so a fit knows which ones it did not see
        self.model: VolModel | None = None
        self.state: VarianceState | None = None
        self._bucket: int | None = None
        self._close = math.nan
        self._last: tuple[int, float] | None = None  # the last finished bucket and its close

    def on_bar(self, bar: Bar, step: int = STEP) -> float | None:
        """Fold a closed candle `step` seconds long (1m or 5m); the 5m log return it completes,
        if any. A 5m candle completes its own bucket at once."""
        bucket = bar.ts - bar.ts % INTERVAL_S
        out = None
        if self._bucket is not None and bucket != self._bucket:
            out = self._finish()
        self._bucket, self._close = bucket, bar.close
        if bar.ts + step == bucket + INTERVAL_S:  # the bucket's last candle: it is complete
            out = self._finish()
        return out

    def _finish(self) -> float | None:
        bucket, close = self._bucket, self._close
        assert bucket is not None  # noqa: S101 -- only called with an open bucket
        self._bucket = None
        previous, self._last = self._last, (bucket, close)
        # A return across a gap would mix several intervals into one and inflate the variance.
        if previous is None or previous[0] != bucket - INTERVAL_S or not previous[1] > 0 or not close > 0:
            return None
        r = math.log(close / previous[1])
        self.returns.append(bucket, r)
        self.total += 1
        if self.state is not None:
            self.state.update(r)
        return r

    def fit_input(self) -> tuple[np.ndarray, int]:
        """The returns a refit should see, and how many returns had been seen when it was asked."""
        return self.returns.values.copy(), self.total

    def install(self, model: VolModel, seen: int) -> None:
        state = VarianceState.from_model(model)
        missed = self.total - seen
        if missed > 0:
            for r in self.returns.values[-missed:].tolist():
                state.update(r)
        self.model, self.state = model, state

    @property
    def daily_vol(self) -> float:
        return daily_vol(self.state.variance, INTERVAL_S) if self.state is not None else math.nan

    @property
    def regime(self) -> str:
        return classify(self.daily_vol, self.model.regimes) if self.model is not None else "EXTREME"


def correlation(a: PairVolatility, b: PairVolatility, min_overlap: int = 100) -> float | None:
    """Pearson correlation of two pairs' 5m returns over the buckets both have; None when they
    share too few to say."""
    # Bucket starts only increase, so each side's are unique.
    _, left, right = np.intersect1d(a.returns.buckets, b.returns.buckets, assume_unique=True, return_indices=True)
    if len(left) < min_overlap:
        return None
    x, y = a.returns.values[left], b.returns.values[right]
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


class Fitter:
    """Where GARCH fits run; a broken pool is replaced on the next fit."""

    def __init__(self, process: bool) -> None:
        self.process = process
        self._pool: Executor | None = None

    def prepare(self) -> None:
        """Start the fitter now: a spawned process takes seconds to import its libraries, which
        the first fit (at the end of the warm-up, before the first decision) should not wait for."""
        self._executor().submit(_ready)

    async def fit(self, returns: np.ndarray) -> VolModel:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), partial(fit, returns, INTERVAL_S))
        except Exception:
            self._drop()
            raise

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.process:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with,
                    initargs=(os.getpid(),),
                )
            else:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="garch")
        return self._pool

    def _drop(self) -> None:
        # Other pairs' fits may be queued on it: let them finish (or fail) rather than cancel them.
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=False)
            self._pool = None


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
