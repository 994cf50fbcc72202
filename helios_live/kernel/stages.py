"""How long each stage of a decision takes: fixed-bucket histograms in seconds, for Prometheus.

Stages: `features` (folding a closed candle into the features and the model's input),
`inference` (the batched model call, as the pair waited for it), `step_<name>` (each step of the
decision chain) and `ledger_commit` (the writer thread's transaction). These are wall-time figures
for operators, never inputs to a decision: they are read from the perf counter only for events
that came from a stream with a receive time (a replay's have none, and read no clock).

Observing is a bisect into a list of counts plus a sum and a count; the ledger writer observes
from its own thread, so the updates are under a lock (held for three additions).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass

# Upper bounds in seconds, 10 us .. 10 s (1-2.5-5 steps); a slower stage counts in +Inf only.
BUCKETS: tuple[float, ...] = (
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StageHistogram:
    """One stage's figures: cumulative counts per upper bound (`BUCKETS`, then +Inf), the sum
    of the observed seconds and their count (the +Inf bucket's)."""

    buckets: tuple[int, ...]
    sum: float
    count: int


class Stages:
    """Histograms of stage durations, created on a stage's first observation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, stage: str, seconds: float) -> None:
        """Count one duration of `stage` (seconds); safe from any thread."""
        i = bisect_left(BUCKETS, seconds)  # the first bound >= seconds: Prometheus's `le`
        with self._lock:
            counts = self._counts.get(stage)
            if counts is None:
                counts = self._counts[stage] = [0] * (len(BUCKETS) + 1)
                self._sums[stage] = 0.0
            counts[i] += 1
            self._sums[stage] += seconds

    def snapshot(self) -> dict[str, StageHistogram]:
        """Every stage's histogram as it stands, buckets cumulative (as Prometheus exposes them)."""
        with self._lock:
            raw = {stage: (list(counts), self._sums[stage]) for stage, counts in self._counts.items()}
        out: dict[str, StageHistogram] = {}
        for stage, (counts, total) in sorted(raw.items()):
            cumulative, running = [], 0
            for n in counts:
                running += n
                cumulative.append(running)
            out[stage] = StageHistogram(tuple(cumulative), total, running)
        return out

    def watch(self, timed: bool) -> Watch | Unwatched:
        """A stopwatch for one decision's stages; `timed` False (no receive time: a replay) gives
        one that reads no clock and observes nothing."""
        return Watch(self) if timed else UNWATCHED


class Watch:
    """Laps of one decision on the perf counter: each `lap(stage)` observes the time since the
    previous lap (or the start, or `restart`)."""

    __slots__ = ("_last", "_stages")

    def __init__(self, stages: Stages) -> None:
        self._stages = stages
        self._last = time.perf_counter()

    def restart(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._stages.observe(stage, now - self._last)
        self._last = now

    def step(self, name: str) -> None:
        """A decision-chain step returned (`run_chain`'s `done`): stage `step_<name>`."""
        self.lap("step_" + name)


class Unwatched:
    """A stopwatch that is not running: what a replayed decision gets."""

    __slots__ = ()

    def restart(self) -> None:
        pass

    def lap(self, stage: str) -> None:
        pass

    def step(self, name: str) -> None:
        pass


UNWATCHED = Unwatched()
