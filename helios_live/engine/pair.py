"""One pair's live state: candle builder, streaming features, the model's input window,
the predictions waiting for their outcome, and the catch-up state after a (re)connect."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from helios_core.features.multi import StreamingFeatures
from helios_core.features.spec import BLOCK, TIMEFRAMES
from helios_core.features.streaming import Bar
from helios_core.labels import LookaheadConfig, lookahead_outcome
from helios_live.stream.candles import STEP, CandleBuilder
from helios_live.stream.events import Book


@dataclass(frozen=True, slots=True)
class Pending:
    """A prediction waiting for its outcome; `stored` is its ledger insert (id, latency)."""

    stored: Future[tuple[int | None, float | None]]
    entry: float
    due: int  # epoch seconds

    def prediction_id(self) -> int | None:
        """The row id; blocks until the insert is done (call it on the writer thread only)."""
        return self.stored.result()[0]


@dataclass
class Catchup:
    """A pair is catching up from `resume_from` (None: from its warm-up) until `cut`, the first
    minute it has seen whole on the stream; events after the cut wait in `buffer`."""

    resume_from: float | None = None
    cut: float | None = None
    buffer: list[tuple[object, float]] = field(default_factory=list)


class PairState:
    def __init__(self, pair: str, grace_s: float, window: int) -> None:
        self.pair = pair
        self.builder = CandleBuilder(grace_s)
        self.features = StreamingFeatures(TIMEFRAMES)
        self.window: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=window)
        self.last_ts: int | None = None
        self.pending: deque[Pending] = deque()
        self.book: Book | None = None
        self.recent: deque[Bar] = deque(maxlen=5000)
        self.catchup: Catchup | None = Catchup()
        self.candles = 0
        self.predictions = 0
        self.backfilled = 0

    def set_window(self, length: int) -> None:
        if self.window.maxlen != length:
            self.window = deque(self.window, maxlen=length)

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
        if self.last_ts is not None and bar.ts != self.last_ts + STEP:
            self.window.clear()  # training windows never span a gap either
        self.window.append((values, valid.astype(np.float32)))
        self.last_ts = bar.ts
        self.recent.append(bar)
        self.candles += 1
        if len(self.window) < (self.window.maxlen or 0) or not valid.any():
            return None
        return np.stack([v for v, _ in self.window], axis=1), np.stack([m for _, m in self.window], axis=1)

    def outcomes(self, bar: Bar, label: LookaheadConfig) -> list[tuple[Pending, str, float]]:
        """Outcomes of the predictions whose horizon ends with `bar` (just folded). Bars arrive in
        order, so a horizon that ended earlier ended on a missing candle: that prediction keeps
        no outcome (null, as a label is in training)."""
        out = []
        now = bar.ts + STEP
        pending = self.pending
        while pending and pending[0].due <= now:
            item = pending.popleft()
            if item.due == now:
                actual, fwd = lookahead_outcome(item.entry, bar.close, label)
                out.append((item, actual.name, fwd))
        return out
