"""Deliveries into the ledger, never on the event loop (the caller's `write` runs on the ledger's
writer thread). While the ledger cannot take them (it is unreachable, the very condition one
alert reports) they wait in memory, at most `capacity`, and are written by the first flush once
writes succeed again: the alert goes out at once, its record lands later. A process that dies
meanwhile loses those records, not the alerts (they were sent, and logged)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from helios_core.errors import HeliosError
from helios_live.ledger.alerts import AlertDelivery

log = logging.getLogger("helios.alerts")
CAPACITY = 10_000


class Recorder:
    def __init__(
        self,
        write: Callable[[list[AlertDelivery]], Awaitable[Any]],
        ready: Callable[[], bool],
        capacity: int = CAPACITY,
    ) -> None:
        self.write, self.ready, self.capacity = write, ready, capacity
        self.pending: deque[AlertDelivery] = deque()
        self.written = 0
        self.dropped = 0  # records lost to a full queue (the oldest go first)
        self._lock = asyncio.Lock()

    def add(self, deliveries: Sequence[AlertDelivery]) -> None:
        self.pending.extend(deliveries)
        while len(self.pending) > self.capacity:
            self.pending.popleft()
            self.dropped += 1

    async def flush(self) -> None:
        """Write what waits, if the ledger takes writes; what it refuses waits for the next flush."""
        async with self._lock:
            if not self.pending or not self.ready():
                return
            batch = list(self.pending)
            try:
                await self.write(batch)
            except HeliosError as exc:
                log.warning("alerts: %d delivery record(s) wait for the ledger: %s", len(batch), exc)
                return
            for _ in batch:
                self.pending.popleft()
            self.written += len(batch)
