"""Engine events (predictions, outcomes, engine state changes) pushed over a WebSocket."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, WebSocket, status

from helios_live.api.deps import token_ok
from helios_live.kernel.kernel import Kernel

router = APIRouter(tags=["events"])


@router.websocket("/api/events")
async def events(websocket: WebSocket, token: str | None = None) -> None:
    """Authenticate with `Authorization: Bearer <token>` or `?token=` (browsers cannot set headers)."""
    header = websocket.headers.get("authorization", "")
    presented = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else token
    if not token_ok(websocket.app.state.settings, presented):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="a valid token is required")
        return
    engine: Kernel = websocket.app.state.engine
    await websocket.accept()
    queue = engine.broadcaster.subscribe()

    async def push() -> None:
        while True:
            await websocket.send_json(await queue.get())

    try:
        # anyio, not bare asyncio tasks: the server (and the test client) cancel this handler
        # through anyio cancel scopes, which a hand-rolled gather can turn into a stray CancelledError.
        async with anyio.create_task_group() as group:
            group.start_soon(push)
            # A quiet engine sends nothing for minutes: listen too, or a closed client goes unnoticed.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
            group.cancel_scope.cancel()
    finally:
        engine.broadcaster.unsubscribe(queue)
