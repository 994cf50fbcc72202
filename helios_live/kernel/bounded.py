"""An async step of the decision chain under the chain's deadline, and out of the ledger
flush's hold while it waits: one pair waiting on a slow answer holds up no other pair's writes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

from helios_core.decision import Context, Denied, Step, Verdict


class Bounded:
    def __init__(self, step: Step, limit_s: float, waiting: Callable[[int], None]) -> None:
        self.step, self.name, self.limit_s, self.waiting = step, step.name, limit_s, waiting

    async def __call__(self, context: Context) -> Verdict:
        result = self.step(context)
        if not inspect.isawaitable(result):
            return result
        self.waiting(1)
        try:
            async with asyncio.timeout(self.limit_s):
                return await result
        except TimeoutError:
            return Denied(self.name, f"deadline: no verdict within {self.limit_s:g} s")
        finally:
            self.waiting(-1)


def bounded(steps: list[Step], limit_s: float, waiting: Callable[[int], None]) -> list[Step]:
    """Each async step bounded, except one that says it must never be cut short
    (`deadline_s = None`: execution, where an order half sent is worse than a slow one)."""
    out: list[Step] = []
    for step in steps:
        is_async = inspect.iscoroutinefunction(type(step).__call__)
        never = hasattr(step, "deadline_s") and step.deadline_s is None
        out.append(Bounded(step, limit_s, waiting) if is_async and not never else step)
    return out
