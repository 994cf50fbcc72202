"""One pair's state in the kernel: candle builder, streaming features, the model's input window,
the predictions waiting for their outcome, a volatility fit in flight, and the catch-up state
after a (re)connect. Its candles are `step` seconds long: the base timeframe of the model
(1m by default)."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from helios_core.bars import STEP, CandleBuilder
from helios_core.features.multi import StreamingFeatures
from helios_core.features.spec import BLOCK, TIMEFRAMES
from helios_core.features.streaming import Bar
from helios_core.labels import LookaheadConfig, lookahead_outcome
from helios_core.market import Book, PairEvent
from helios_core.risk.garch import VolModel
from helios_core.risk.price_guard import GuardConfig, PriceGuard
from helios_core.timeframes import Timeframe
from helios_live.clock import TestClock
from helios_live.ledger.writer import Settled, Stored

SCORED = 50  # the latest scored predictions a pair keeps for its hit rate


class Arrival(NamedTuple):
    """An event as it entered the kernel: when its message arrived (`perf_counter()`, None when
    replayed), and the clock's time then. A pair's events are handled at the time they arrived,
    however long they waited in its queue, so a lagging pair decides as a prompt one would."""

    event: PairEvent
    received: float | None
    at: float


@dataclass(frozen=True, slots=True)
class Pending:
    """A prediction waiting for its outcome; `stored` is its ledger insert (id, latency)."""

    stored: Future[Stored]
    entry: float
    due: int  # epoch seconds
    label: str = ""  # what it predicted ("" for one restored from the ledger)


@dataclass
class Catchup:
    """A pair is catching up from `resume_from` (None: from its warm-up) until `cut`, the start
    of the first candle it has seen whole on the stream; events after the cut wait in `buffer`."""

    resume_from: float | None = None
    cut: float | None = None
    buffer: list[Arrival] = field(default_factory=list)


@dataclass
class Fit:
    """A volatility fit asked for at a point of the pair's events, installed at its next bar."""

    task: asyncio.Future[VolModel]
    seen: int  # returns seen when it was asked for


class PairState:
    def __init__(
        self, pair: str, grace_s: float, window: int, guard: GuardConfig | None = None, step: int = STEP
    ) -> None:
        self.pair = pair
        self.step = step  # seconds of one base candle
        self.guard: PriceGuard[PairEvent] = PriceGuard(guard or GuardConfig())
        self.builder = CandleBuilder(grace_s, step)
        self.features = StreamingFeatures(TIMEFRAMES, str(Timeframe.from_seconds(step)))
        self._window = np.zeros((2, len(TIMEFRAMES), window, BLOCK), dtype=np.float32)  # values, then mask
        self._filled = 0  # consecutive candles in the window
        self.last_ts: int | None = None
        self.pending: deque[Pending] = deque()
        per_hour = max(1, 3600 // step)
        self._minute_volumes: deque[float] = deque(maxlen=per_hour)  # the last hour of candles
        self._hour_volumes: deque[float] = deque(maxlen=25)  # whole hours of `per_hour` candles
        self._in_hour = 0
        self.scored: deque[tuple[str, str]] = deque(maxlen=SCORED)  # (predicted, actual), for Tier 4
        self.deciding: asyncio.Task[None] | None = None  # the decision waiting on an async step
        self.book: Book | None = None
        self.recent: deque[Bar] = deque(maxlen=5000)
        self.catchup: Catchup | None = Catchup()
        # The perf counter when the pair last finished catching up (-inf: never; inf while it
        # replays its buffer): a decision on a message received before it is a catch-up decision,
        # whose latency includes the wait, never a live one.
        self.catching_up_until = -math.inf
        self.fit: Fit | None = None
        self.refit_due = False
        # The pair's own clock, moved to each of its events as it handles them: refits and
        # position time-outs fire on it at their time, however far the pair lags the kernel's.
        self.timers = TestClock()
        self.now = float("nan")  # the time its event being handled arrived
        self.candles = 0
        self.predictions = 0
        self.backfilled = 0
        self.books_dropped = 0
        self.suspect_book: Book | None = None  # the latest book the price guard did not believe
        self.summaries_ignored = 0
        self.wicks_clamped = 0
        self.guard_recorded: dict[str, float] = {}  # when each kind of guard event was last recorded

    @property
    def last_close(self) -> int | None:
        """When the pair's last candle closed (epoch seconds); None before the first."""
        return self.last_ts + self.step if self.last_ts is not None else None

    def candle_age(self, now: float) -> float | None:
        """Seconds from the last candle's close to `now`; None before the first, or without a time."""
        close = self.last_close
        return None if close is None or math.isnan(now) else now - close

    def volume(self) -> tuple[float | None, list[float]]:
        """The volume of the pair's last hour of candles (None until it has one) and of each
        earlier hour of the last day, for Tier 4's liquidity regime."""
        last = sum(self._minute_volumes) if len(self._minute_volumes) == self._minute_volumes.maxlen else None
        return last, list(self._hour_volumes)[:-1]  # the newest hour overlaps the last one

    @property
    def window_length(self) -> int:
        return int(self._window.shape[2])

    def set_window(self, length: int) -> None:
        old = self._window
        if old.shape[2] == length:
            return
        keep = min(self._filled, length, old.shape[2])
        self._window = np.zeros((2, len(TIMEFRAMES), length, BLOCK), dtype=np.float32)
        if keep:
            self._window[:, :, length - keep :] = old[:, :, old.shape[2] - keep :]
        self._filled = keep

    def with_book(self, bar: Bar) -> Bar:
        book = self.book
        if book is None or not book.bids or not book.asks:
            return bar
        return bar._replace(
            book_bid=book.bids[0][0],
            book_ask=book.asks[0][0],
            book_bid_qty=book.bids[0][1],
            book_ask_qty=book.asks[0][1],
        )

    def fold(self, bar: Bar) -> tuple[np.ndarray, np.ndarray] | None:
        """Fold a closed bar into the features; the model input (timeframes, window, 30) once the
        window holds that many consecutive candles and the newest has a valid feature."""
        values = np.asarray(self.features.update(bar), dtype=np.float32).reshape(len(TIMEFRAMES), BLOCK)
        valid = np.isfinite(values)
        values[~valid] = 0.0
        if self.last_ts is not None and bar.ts != self.last_ts + self.step:
            self._filled = 0  # training windows never span a gap either
        # A rolling buffer: one candle in, the oldest out, instead of stacking the window anew.
        window = self._window
        window[:, :, :-1] = window[:, :, 1:]
        window[0, :, -1] = values
        window[1, :, -1] = valid
        self._filled = min(self._filled + 1, window.shape[2])
        self.last_ts = bar.ts
        self.recent.append(bar)
        self._count_volume(bar.volume)
        self.candles += 1
        if self._filled < window.shape[2] or not valid.any():
            return None
        return window[0].copy(), window[1].copy()

    def _count_volume(self, volume: float) -> None:
        minutes = self._minute_volumes
        minutes.append(volume if math.isfinite(volume) else 0.0)
        self._in_hour += 1
        if self._in_hour == minutes.maxlen:  # a whole hour of candles since the last one
            self._hour_volumes.append(sum(minutes))
            self._in_hour = 0

    def outcomes(self, bar: Bar, label: LookaheadConfig) -> list[Settled]:
        """Outcomes of the predictions whose horizon ends with `bar` (just folded). Bars arrive in
        order, so a horizon that ended earlier ended on a missing candle: that prediction keeps
        no outcome (null, as a label is in training)."""
        out: list[Settled] = []
        now = bar.ts + self.step
        pending = self.pending
        while pending and pending[0].due <= now:
            item = pending.popleft()
            if item.due == now:
                actual, fwd = lookahead_outcome(item.entry, bar.close, label)
                out.append((item.stored, actual.name, fwd))
                if item.label:
                    self.scored.append((item.label, actual.name))
        return out
