"""The live half of `make demo`: the exchange simulator replays recorded candles and the live
service, started as `helios live serve` runs it, decides on every candle with the ACTIVE model.

Both run on loopback in this process; predictions are read from the service's own event
WebSocket, as any client would read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import uvicorn
import websockets

from helios_live.api.app import create_app
from helios_live.data.lake import Lake
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from helios_live.simulator.exchange import ExchangeSimulator
from helios_live.simulator.valr_rest import Recorded

SPEED = 600.0  # a simulated minute every 0.1 s


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def live_demo(settings: HeliosSettings, echo: Callable[[str], None], hours: float = 2.0) -> dict[str, Any]:
    """Replay the last `hours` of the model's training pair through the live service; returns
    the service's metrics at the end."""
    registry = Registry(settings.models_root)
    active = registry.active()
    if active is None:
        echo("  no ACTIVE model (the gate refused it): the live service would have nothing to serve")
        return {}
    pair = registry.get(active).meta["pairs"][0]
    lake = Lake(settings.lake_root)
    days = sorted(f.day for f in lake.files("candles") if f.pair == pair and f.timeframe == "1m")
    candles = lake.read_range("candles", pair, "1m", days[-1] - timedelta(days=1), days[-1])
    start = candles["ts"].iloc[-1] - pd.Timedelta(hours=hours)
    replay = candles.loc[candles["ts"] >= start].reset_index(drop=True)
    simulator = ExchangeSimulator(Recorded(candles={pair: replay}), speed=SPEED, start=start.to_pydatetime())
    simulator.pause()
    async with simulator:
        token = secrets.token_urlsafe(24)
        service = HeliosSettings.model_validate(
            {
                **settings.model_dump(),
                "live_pairs": (pair,),
                "live_candles": "buckets",  # the sample has candles, not trades, for this pair
                "live_clock": "exchange",  # a replay: candles close on the exchange's time
                "live_ws_url": simulator.ws_url,
                "valr_base_url": simulator.rest_url,
                "api_port": free_port(),
                "api_token": token,
            }
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(service), host="127.0.0.1", port=service.api_port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        base = f"http://127.0.0.1:{service.api_port}"
        echo(
            f"  simulator {simulator.ws_url} replays {pair} from {start:%Y-%m-%d %H:%M} at {SPEED:.0f}x; service {base}"
        )
        try:
            await _until_subscribed(server, base)
            async with websockets.connect(f"ws://127.0.0.1:{service.api_port}/api/events?token={token}") as events:
                simulator.resume()
                await _print_events(events, simulator, echo)
            async with httpx.AsyncClient(base_url=base) as client:
                metrics: dict[str, Any] = (await client.get("/api/autonomous-engine/metrics")).json()
        finally:
            server.should_exit = True
            await serving
    return metrics


async def _until_subscribed(server: uvicorn.Server, base: str) -> None:
    """The service is up and its stream subscribed, so the replay starts with it listening."""
    async with asyncio.timeout(30), httpx.AsyncClient(base_url=base) as client:
        while True:
            if server.started:
                metrics = (await client.get("/api/autonomous-engine/metrics")).json()
                if metrics["messages"]["accepted"].get("SUBSCRIBED"):
                    return
            await asyncio.sleep(0.05)


async def _print_events(
    events: websockets.ClientConnection, simulator: ExchangeSimulator, echo: Callable[[str], None]
) -> None:
    shown = 0
    while not simulator.finished.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                event = json.loads(await events.recv())
                if event["type"] == "prediction":
                    shown += 1
                    if shown <= 12 or shown % 20 == 0:
                        echo(_line(event))
                elif event["type"] == "engine" and event["kind"] in ("CATCH_UP", "MODEL_LOADED", "BACKFILL_FAILED"):
                    detail = {k: v for k, v in event.items() if k not in ("type", "kind", "at")}
                    echo(f"  engine {event['kind']}: {detail}")
    await asyncio.sleep(0.5)  # the last candle closes after its grace period


def _line(event: dict[str, Any]) -> str:
    p = event["probabilities"]
    verdict = event["steps"][-1]
    outcome = "approved" if verdict["approved"] else f"denied at {verdict['step']}: {verdict['reason']}"
    return (
        f"  {event['candle_ts'][:16]} {event['pair']} {event['prediction']:<4} "
        f"BUY {p['BUY']:.2f} SELL {p['SELL']:.2f} HOLD {p['HOLD']:.2f} conf {event['confidence']:.2f}  {outcome}"
    )
