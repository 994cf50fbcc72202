"""Fan-out of engine events to WebSocket subscribers; a slow subscriber loses its oldest events,
never slows the engine."""

from __future__ import annotations

import asyncio
from typing import Any


class Broadcaster:
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.size)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self.subscribers:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)
