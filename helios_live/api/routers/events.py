"""Engine events (predictions, outcomes, engine state changes) pushed over a WebSocket."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, WebSocket, status

from helios_live.api.auth import SUBPROTOCOL
from helios_live.api.gate import PRINCIPAL
from helios_live.kernel.kernel import Kernel

router = APIRouter(tags=["events"])


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    """Any principal (a viewer too). Authenticate with `Authorization: Bearer <token>`, the UI's
    session cookie from a page of this service, or, where headers cannot be set (a browser), by
    offering two subprotocols, this name and then the token:
    `new WebSocket(url, ["helios.bearer", token])`. The server answers with `helios.bearer` alone,
    never the token. A token in the query string is not read: URLs end up in access logs. The
    gate (gate.py) identifies the caller; a handshake without one never reaches this far."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    if websocket.scope.get(PRINCIPAL) is None:
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
