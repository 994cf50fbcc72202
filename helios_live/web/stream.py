"""Server-sent events for the dashboard: the engine's broadcast, each event's type only (the page
fetches what changed through its fragments, with the same session, so nothing is sent twice).

EventSource sends the session cookie by itself and reconnects by itself; a comment every
HEARTBEAT_S keeps proxies from closing a quiet stream. Starlette ends the stream when the client
goes; the server does not when it stops, so a stream also ends after LIFETIME_S (the browser
reconnects), and the service's graceful-shutdown limit (`helios live serve`, the demo) ends one
that would hold a stop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from helios_live.kernel.kernel import Kernel

HEARTBEAT_S = 15.0
LIFETIME_S = 300.0  # then the stream ends and EventSource reconnects: no stream outlives a stop by long


def response(request: Request) -> StreamingResponse:
    engine: Kernel = request.app.state.engine
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(request, engine), media_type="text/event-stream", headers=headers)


async def _events(request: Request, engine: Kernel) -> AsyncIterator[str]:
    queue = engine.broadcaster.subscribe()
    loop = asyncio.get_running_loop()
    ends = loop.time() + LIFETIME_S
    try:
        yield "retry: 3000\n\n"
        while loop.time() < ends and not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), min(HEARTBEAT_S, max(0.0, ends - loop.time())))
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            yield f"data: {json.dumps({'type': str(event.get('type', 'event'))})}\n\n"
    finally:
        engine.broadcaster.unsubscribe(queue)
