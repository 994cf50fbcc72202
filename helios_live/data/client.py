"""What the kernel asks of a data client: a stream of typed market events and closed candles
of the past. A venue's client (VALR's WebSocket and REST API) and a replay of recorded data
both answer it; the kernel cannot tell them apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from helios_core.features.streaming import Bar
from helios_core.market import DataEvent

EventSink = Callable[[DataEvent, float | None], Awaitable[None]]
"""Takes an event and the `perf_counter()` at which its message arrived (None: replayed)."""


@dataclass
class ClientStats:
    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    connected: bool = False
    last_error: str = ""


class DataClient(Protocol):
    @property
    def stats(self) -> ClientStats: ...

    @property
    def accepted(self) -> Counter[str]:
        """Messages taken, by kind."""
        ...

    @property
    def rejected(self) -> Counter[str]:
        """Messages refused, by reason."""
        ...

    async def run(self, pairs: tuple[str, ...], sink: EventSink) -> None:
        """Deliver the events of `pairs` until the data ends (a replay) or the task is cancelled
        (a stream)."""
        ...

    async def history(self, pair: str, start: float, end: float) -> list[Bar]:
        """Closed 1m bars of `pair` opening in [start, end), oldest first; HeliosError if the
        source fails. Never a bar the source could not have known by the clock's now."""
        ...

    def silent_s(self) -> float | None:
        """Seconds since the last message (None before the first); a replay is never silent."""
        ...

    async def close(self) -> None: ...
