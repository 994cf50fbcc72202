"""No task dies quietly: the kernel's background tasks and timers run under a supervisor.

The rules, per kind of work:

- A **task** (the data client, a pair's worker) that raises is logged, counted and recorded as
  a `TASK_FAILED` engine event, then restarted after its backoff (doubling from `restart_s`,
  at most a minute). A task with `max_failures` that fails that many times in a row (a run
  that lasted a minute of the clock or more starts the count again) is given up:
  `TASK_GAVE_UP` is recorded and the kernel's `give_up` rule runs (it stops the engine with an
  emergency stop, since positions nobody watches must not stay open). A task that returns is
  done.
- A **timer**'s callback that raises is counted every time and recorded as `TIMER_FAILED` on
  the first failure of a streak (not on every tick of a broken one); the timer keeps its
  schedule, so its next run is its restart, and the first success after a streak is recorded
  as `TIMER_RECOVERED`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from helios_live.clock import Clock, TimeEvent, TimerCallback

log = logging.getLogger("helios.live")
Record = Callable[..., Awaitable[None]]
MAX_BACKOFF_S = 60.0
STREAK_S = 60.0  # a run this long between two failures is a new streak, not one more of the last


class Supervisor:
    def __init__(
        self, clock: Clock, record: Record, errors: Counter[str], give_up: Callable[[str], Awaitable[None]]
    ) -> None:
        self.clock = clock
        self.record = record
        self.errors = errors
        self.give_up = give_up
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._streaks: Counter[str] = Counter()

    def task(
        self,
        name: str,
        factory: Callable[[], Coroutine[Any, Any, None]],
        *,
        restart_s: float = 1.0,
        max_failures: int | None = None,
    ) -> asyncio.Task[None]:
        """Run `factory()` as a supervised task named `name`."""
        task = asyncio.get_running_loop().create_task(self._run(name, factory, restart_s, max_failures), name=name)
        self.tasks[name] = task
        return task

    async def _run(
        self,
        name: str,
        factory: Callable[[], Coroutine[Any, Any, None]],
        restart_s: float,
        max_failures: int | None,
    ) -> None:
        failures = 0
        while True:
            began = self.clock.timestamp()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- the point: nothing ends a task unrecorded
                if self.clock.timestamp() - began >= STREAK_S:
                    failures = 0
                failures += 1
                self.errors[f"task:{name}"] += 1
                log.exception("task %s failed (%d in a row)", name, failures)
                gave_up = max_failures is not None and failures >= max_failures
                delay = min(MAX_BACKOFF_S, restart_s * 2 ** (failures - 1))
                await self.record(
                    "TASK_FAILED", task=name, error=f"{type(exc).__name__}: {exc}", failures=failures,
                    restart_in_s=None if gave_up else delay,
                )  # fmt: skip
                if gave_up:
                    await self.record("TASK_GAVE_UP", task=name, failures=failures)
                    await self.give_up(name)
                    return
                await asyncio.sleep(delay)
                continue
            return

    def timer(self, name: str, callback: Callable[[TimeEvent], Awaitable[None] | None]) -> TimerCallback:
        """`callback` as a timer callback that never raises (see the module's rules)."""

        async def guarded(event: TimeEvent) -> None:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- recorded, and the timer carries on
                self.errors[f"timer:{name}"] += 1
                self._streaks[name] += 1
                log.exception("timer %s failed", name)
                if self._streaks[name] == 1:
                    await self.record("TIMER_FAILED", timer=name, error=f"{type(exc).__name__}: {exc}")
                return
            if self._streaks.pop(name, 0):
                await self.record("TIMER_RECOVERED", timer=name)

        return guarded

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks, self.tasks = list(self.tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a task that died earlier must not keep the engine from stopping
                log.exception("task %s failed", task.get_name())
