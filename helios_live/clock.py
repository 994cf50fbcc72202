"""The clock the kernel is given, with timers: the machine's (`LiveClock`) or a simulated one
(`TestClock`) that moves only when it is told to.

Everything periodic in the live service is a timer on this clock, never a sleep loop, so the
same kernel runs unchanged against the wall clock and under simulated time. A `TestClock` is
advanced by its owner: a backtest or a replay moves it to each event's exchange time, and every
timer that falls due on the way fires in time order (ties in the order they were set), with
the clock reading the timer's own due time while its callback runs. Same inputs, same firings.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

log = logging.getLogger("helios.clock")
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TimeEvent:
    """A timer or time alert that fell due; `ts_ns` is when it was due. A LiveClock also says
    when it fired (`perf_counter()`), for latency figures; simulated time has no such moment."""

    name: str
    ts_ns: int
    fired: float | None = None

    @property
    def ts(self) -> float:
        return self.ts_ns / NS


TimerCallback = Callable[[TimeEvent], Awaitable[None] | None]


class Clock(Protocol):
    @property
    def is_set(self) -> bool:
        """Whether the clock has a time (a LiveClock always has; a TestClock once advanced)."""
        ...

    def now_ns(self) -> int:
        """Epoch nanoseconds now; ClockNotSet on a TestClock that was never given a time."""
        ...

    def timestamp(self) -> float:
        """Epoch seconds now; NaN while the clock has no time yet."""
        ...

    def set_timer(self, name: str, interval_s: float, callback: TimerCallback, *, start_s: float | None = None) -> None:
        """Call `callback` every `interval_s`, first at `start_s` (default: one interval from now).
        A name is one timer: setting it again replaces it."""
        ...

    def set_time_alert(self, name: str, at_s: float, callback: TimerCallback) -> None:
        """Call `callback` once at `at_s` (at once, on the next chance, if that has passed)."""
        ...

    def cancel(self, name: str) -> None:
        """Forget a timer or alert; an unknown name is ignored."""
        ...

    def cancel_all(self) -> None: ...

    @property
    def timer_names(self) -> list[str]: ...


class ClockNotSet(RuntimeError):
    """A TestClock was read, or given a relative timer, before it had a time."""


def _ns(seconds: float) -> int:
    if not math.isfinite(seconds):
        raise ValueError(f"a time must be finite, got {seconds}")
    return round(seconds * NS)


def _interval_ns(interval_s: float) -> int:
    interval = _ns(interval_s)
    if interval <= 0:
        raise ValueError(f"a timer's interval must be positive, got {interval_s} s")
    return interval


@dataclass(slots=True)
class _Timer:
    name: str
    callback: TimerCallback
    interval_ns: int | None  # None: a one-off alert
    next_ns: int
    order: int = 0  # when it was set, among a clock's timers: breaks ties between equal due times


class TestClock:
    """Simulated time. `advance_to` moves it forward, firing every timer due on the way."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, start_s: float | None = None) -> None:
        self._now: int | None = None if start_s is None else _ns(start_s)
        self._timers: dict[str, _Timer] = {}
        self._queue: list[tuple[int, int, str, _Timer]] = []  # (due, order, name, timer)
        self._sequence = itertools.count()

    @property
    def is_set(self) -> bool:
        return self._now is not None

    def now_ns(self) -> int:
        if self._now is None:
            raise ClockNotSet("the TestClock has no time yet: advance it first")
        return self._now

    def timestamp(self) -> float:
        return math.nan if self._now is None else self._now / NS

    def set_timer(self, name: str, interval_s: float, callback: TimerCallback, *, start_s: float | None = None) -> None:
        interval = _interval_ns(interval_s)
        first = _ns(start_s) if start_s is not None else self.now_ns() + interval
        self._add(_Timer(name, callback, interval, first))

    def set_time_alert(self, name: str, at_s: float, callback: TimerCallback) -> None:
        self._add(_Timer(name, callback, None, _ns(at_s)))

    def cancel(self, name: str) -> None:
        self._timers.pop(name, None)  # its queue entries are skipped when they come up

    def cancel_all(self) -> None:
        self._timers.clear()
        self._queue.clear()

    @property
    def timer_names(self) -> list[str]:
        return sorted(self._timers)

    def next_due_s(self) -> float | None:
        """When the next timer falls due, or None without any."""
        self._drop_stale()
        return self._queue[0][0] / NS if self._queue else None

    async def advance_to(self, ts_s: float) -> int:
        """Move to `ts_s` (never backwards: an earlier time is ignored), firing each timer due at
        or before it in time order; returns how many fired. A callback may set or cancel timers,
        and one it sets that falls due by `ts_s` fires in this same advance."""
        target = _ns(ts_s)
        if self._now is None:
            self._now = target
        if target < self._now:
            return 0
        fired = 0
        while True:
            self._drop_stale()
            if not self._queue or self._queue[0][0] > target:
                break
            due, _, name, timer = heapq.heappop(self._queue)
            self._now = max(self._now, due)
            if timer.interval_ns is None:
                del self._timers[name]
            else:
                timer.next_ns = due + timer.interval_ns
                self._push(timer)
            result = timer.callback(TimeEvent(name, due))
            if inspect.isawaitable(result):
                await result
            fired += 1
        self._now = target
        return fired

    def _add(self, timer: _Timer) -> None:
        timer.order = next(self._sequence)
        self._timers[timer.name] = timer
        self._push(timer)

    def _push(self, timer: _Timer) -> None:
        heapq.heappush(self._queue, (timer.next_ns, timer.order, timer.name, timer))

    def _drop_stale(self) -> None:
        # Entries of cancelled, replaced or rescheduled timers stay in the heap until they reach its top.
        queue = self._queue
        while queue:
            due, _, name, timer = queue[0]
            if self._timers.get(name) is timer and timer.next_ns == due:
                return
            heapq.heappop(queue)


class ExchangeClock(TestClock):
    """A TestClock that the kernel moves to the exchange's time as the data tells it: for a live
    service fed by a replaying exchange (the simulator, the demo), where candles must close on
    the replay's time. Before the first event it has no market time; what must be stamped
    then (the start-up) reads the machine's clock, and nothing falls due."""

    def timestamp(self) -> float:
        return super().timestamp() if self.is_set else time.time()


class LiveClock:
    """The machine's UTC clock, with timers on the running asyncio loop.

    A timer that fires while its previous callback is still running skips that turn rather
    than piling up; one that fires late (a blocked loop) fires once and keeps its grid.
    """

    def __init__(self) -> None:
        self._timers: dict[str, _Timer] = {}
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._running: dict[str, asyncio.Future[None]] = {}

    @property
    def is_set(self) -> bool:
        return True

    def now_ns(self) -> int:
        return time.time_ns()

    def timestamp(self) -> float:
        return time.time()

    def set_timer(self, name: str, interval_s: float, callback: TimerCallback, *, start_s: float | None = None) -> None:
        interval = _interval_ns(interval_s)
        first = _ns(start_s) if start_s is not None else self.now_ns() + interval
        self._schedule(_Timer(name, callback, interval, first))

    def set_time_alert(self, name: str, at_s: float, callback: TimerCallback) -> None:
        self._schedule(_Timer(name, callback, None, _ns(at_s)))

    def cancel(self, name: str) -> None:
        self._timers.pop(name, None)
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for name in list(self._timers):
            self.cancel(name)

    @property
    def timer_names(self) -> list[str]:
        return sorted(self._timers)

    def _schedule(self, timer: _Timer) -> None:
        self.cancel(timer.name)
        self._timers[timer.name] = timer
        loop = asyncio.get_running_loop()
        delay = max(0.0, (timer.next_ns - self.now_ns()) / NS)
        self._handles[timer.name] = loop.call_at(loop.time() + delay, self._fire, timer)

    def _fire(self, timer: _Timer) -> None:
        if self._timers.get(timer.name) is not timer:
            return
        due = timer.next_ns
        if timer.interval_ns is None:
            self._timers.pop(timer.name, None)
            self._handles.pop(timer.name, None)
        else:
            now = self.now_ns()
            missed = max(0, (now - due) // timer.interval_ns)
            timer.next_ns = due + (missed + 1) * timer.interval_ns
            loop = asyncio.get_running_loop()
            self._handles[timer.name] = loop.call_at(loop.time() + (timer.next_ns - now) / NS, self._fire, timer)
        if timer.name in self._running:
            log.warning("timer %s is still running from its last turn; this turn is skipped", timer.name)
            return
        try:
            result = timer.callback(TimeEvent(timer.name, due, time.perf_counter()))
        except Exception:  # the callbacks the kernel sets are supervised; this is the last resort
            log.exception("timer %s failed", timer.name)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._running[timer.name] = task
            task.add_done_callback(partial(self._done, timer.name))

    def _done(self, name: str, task: asyncio.Future[None]) -> None:
        self._running.pop(name, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("timer %s failed", name, exc_info=task.exception())
