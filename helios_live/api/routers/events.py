"""Engine events (predictions, outcomes, engine state changes) pushed over a WebSocket."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, WebSocket, status

from helios_live.api.deps import token_ok
from helios_live.kernel.kernel import Kernel

router = APIRouter(tags=["events"])
SUBPROTOCOL = "helios.bearer"


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    """Authenticate with `Authorization: Bearer <token>`, or, where headers cannot be set (a
    browser), by offering two subprotocols, this name and then the token:
    `new WebSocket(url, ["helios.bearer", token])`. The server answers with `helios.bearer` alone,
    never the token. A token in the query string is not read: URLs end up in access logs."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    if not token_ok(websocket.app.state.settings, _presented(websocket, offered)):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="a valid token is required")
        return
    engine: Kernel = websocket.app.state.engine
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
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


def _presented(websocket: WebSocket, offered: list[str]) -> str | None:
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if SUBPROTOCOL in offered[:-1]:
        return offered[offered.index(SUBPROTOCOL) + 1]
    return None
