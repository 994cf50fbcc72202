"""The live half of `make demo`: the exchange simulator replays recorded candles and the live
service, started as `helios live serve` runs it, decides on every candle with the ACTIVE model
and trades on paper.

Both run on loopback in this process; predictions and positions are read from the service's
own event WebSocket and REST API, as any client would read them. The replay gets a ledger of
its own, new on every run: a ledger that had already decided these candles would rightly
decide none of them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn
import websockets

from helios_live.api.app import create_app
from helios_live.api.users import add_user
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator

DEMO_USER = "demo"
SPEED = 600.0  # a simulated minute every 0.1 s
RECENT_DAYS = 4  # the end of the month: the model's held-out test period
DEMO_MIN_CONFIDENCE = 0.40


def most_volatile(candles: pd.DataFrame, hours: float) -> pd.Timestamp:
    """The start of the `hours` with the largest realised volatility: a quiet stretch shows a
    model that rightly predicts HOLD and a portfolio that never moves. The choice looks at the
    market only, never at what the model would predict."""
    returns = np.log(candles["close"]).diff()
    width = int(hours * 60)
    realised = returns.pow(2).rolling(width).sum().shift(-(width - 1))
    return pd.Timestamp(candles["ts"].iloc[int(realised.idxmax())])


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
    candles = lake.read_range("candles", pair, "1m", days[-1] - timedelta(days=RECENT_DAYS), days[-1])
    start = most_volatile(candles, hours)
    replay = candles.loc[(candles["ts"] >= start) & (candles["ts"] < start + pd.Timedelta(hours=hours))]
    replay = replay.reset_index(drop=True)
    simulator = ExchangeSimulator(Recorded(candles={pair: replay}), speed=SPEED, start=start.to_pydatetime())
    simulator.pause()
    async with simulator:
        token = secrets.token_urlsafe(24)
        ledger = settings.home.resolve() / "demo" / "live.db"
        ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger.unlink(missing_ok=True)
        users, password = ledger.with_name("ui-users"), secrets.token_urlsafe(12)
        users.unlink(missing_ok=True)
        add_user(users, DEMO_USER, "operator", password)  # the dashboard's login for this run only
        service = settings.replace(
            live_pairs=(pair,),
            live_candles="buckets",  # the sample has candles, not trades, for this pair
            live_clock="exchange",  # a replay: candles close on the exchange's time
            live_ws_url=simulator.ws_url,
            valr_base_url=simulator.rest_url,
            api_port=free_port(),
            api_token=token,
            database_url=f"sqlite:///{ledger}",
            live_min_confidence=DEMO_MIN_CONFIDENCE,
            ui_users_file=users,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(service),
                host="127.0.0.1",
                port=service.api.port,
                log_level="warning",
                timeout_graceful_shutdown=5,  # a dashboard left open on the replay does not hold the exit
            )
        )
        serving = asyncio.create_task(server.serve())
        base = f"http://127.0.0.1:{service.api.port}"
        echo(
            f"  simulator {simulator.ws_url} replays {pair} from {start:%Y-%m-%d %H:%M} (the most volatile"
            f" {hours:g} hours of the last {RECENT_DAYS} days) at {SPEED:.0f}x; service {base}"
        )
        echo(
            f"  paper trading with auto-trading on; confidence floor {DEMO_MIN_CONFIDENCE} for this demo"
            f" (default {settings.live.min_confidence}: the demo's small, briefly trained model is rarely that sure)"
        )
        try:
            await _until_subscribed(server, base, token)
            echo(
                f"  dashboard {base}/ui while the replay runs (user {DEMO_USER}, password {password}); afterwards"
                f" `HELIOS_DATABASE_URL=sqlite:///{ledger} HELIOS_LIVE_AUTOSTART=false helios live serve`"
                " serves this ledger at http://127.0.0.1:8000/ui"
            )
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=auth) as client:
                await client.post("/api/autonomous-engine/auto-trading/enable")
            url = f"ws://127.0.0.1:{service.api.port}/api/events"
            async with websockets.connect(url, additional_headers=auth) as events:
                simulator.resume()
                await _print_events(events, simulator, echo)
            async with httpx.AsyncClient(base_url=base, headers=auth) as client:
                closing = {"reason": "end of the demo replay"}
                stopped = (await client.post("/api/autonomous-engine/emergency-stop", json=closing)).json()
                echo(f"  emergency stop at the end of the replay: {stopped['message']}")
                metrics: dict[str, Any] = (await client.get("/api/autonomous-engine/metrics")).json()
                metrics["trading"] = await _trading(client)
            for line in latency_lines(metrics):
                echo(line)
        finally:
            server.should_exit = True
            await serving
    return metrics


async def _until_subscribed(server: uvicorn.Server, base: str, token: str) -> None:
    """The service is up and its stream subscribed, so the replay starts with it listening."""
    auth = {"Authorization": f"Bearer {token}"}  # reads need the token too (docs/live.md, "Security")
    async with asyncio.timeout(30), httpx.AsyncClient(base_url=base, headers=auth) as client:
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
                elif event["type"] == "position":
                    echo(_position_line(event))
                elif event["type"] == "engine" and event["kind"] in ("CATCH_UP", "MODEL_LOADED", "BACKFILL_FAILED"):
                    detail = {k: v for k, v in event.items() if k not in ("type", "kind", "at")}
                    echo(f"  engine {event['kind']}: {detail}")
    await asyncio.sleep(0.5)  # the last candle closes after its grace period


def latency_lines(metrics: dict[str, Any]) -> list[str]:
    """The engine's latency, closing message -> stored prediction, in plain words: the live
    decisions' figure, and apart from it the decisions whose message waited for the pair's
    catch-up (the warm-up's backfill at the start, or a reconnect's), which count that wait."""
    live, catchup = metrics["decision_latency_ms"], metrics["catchup_latency_ms"]
    if live["samples"]:
        lines = [
            f"  latency of live decisions, closing message -> stored prediction: p50 {live['p50']:.1f} ms,"
            f" p99 {live['p99']:.1f} ms over {_decisions(live['decisions'])}"
        ]
    else:
        lines = ["  latency of live decisions: none measured (no live decision came from a message)"]
    if catchup["decisions"]:
        lines.append(
            f"  not counted in it: {_decisions(catchup['decisions'])} on candles whose messages arrived while the"
            f" engine was catching up (backfilling its warm-up, or a hole after a reconnect) and waited for it:"
            f" p50 {catchup['p50']:.0f} ms, p99 {catchup['p99']:.0f} ms, that wait included"
        )
    else:
        lines.append("  no decision waited for a catch-up")
    return lines


def _decisions(n: int) -> str:
    return f"{n} decision" if n == 1 else f"{n} decisions"


def _line(event: dict[str, Any]) -> str:
    p = event["probabilities"]
    verdict = event["steps"][-1]
    outcome = "approved" if verdict["approved"] else f"denied at {verdict['step']}: {verdict['reason']}"
    return (
        f"  {event['candle_ts'][:16]} {event['pair']} {event['prediction']:<4} "
        f"BUY {p['BUY']:.2f} SELL {p['SELL']:.2f} HOLD {p['HOLD']:.2f} conf {event['confidence']:.2f}  {outcome}"
    )


def _position_line(event: dict[str, Any]) -> str:
    if event["event"] == "OPEN":
        return f"  >> paper {event['side']} {event['pair']} {event['quantity']:.6g} at {event['price']:.2f}"
    return (
        f"  << closed {event['side']} {event['pair']} at {event['price']:.2f} ({event['reason']}):"
        f" P&L {event['realised_pnl']:+.2f}"
    )


async def _trading(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the paper account did: positions, P&L, max drawdown (over the snapshots), denials."""
    portfolio = (await client.get("/api/portfolio")).json()
    closed = await _all(client, "/api/positions", status="CLOSED")
    snapshots = await _all(client, "/api/portfolio/snapshots")
    predictions = await _all(client, "/api/predictions")
    denials: Counter[str] = Counter()
    for prediction in predictions:
        last = prediction["steps"][-1]
        if not last["approved"]:
            denials[denial_kind(last["step"], last["reason"])] += 1
    return {
        "portfolio": portfolio,
        "closed": len(closed),
        "realised_pnl": sum(p["realised_pnl"] or 0.0 for p in closed),
        "wins": sum(1 for p in closed if (p["realised_pnl"] or 0.0) > 0),
        "close_reasons": dict(Counter(p["close_reason"] for p in closed)),
        "max_drawdown": max((s["drawdown"] for s in snapshots), default=0.0),
        "denials": dict(denials.most_common()),
    }


def denial_kind(step: str, reason: str) -> str:
    """A denial without its figures: "confidence 0.412 below 0.55" and "... 0.398 ..." are one
    reason, and so is an open position whatever its key."""
    reason = re.sub(r" \(key [^)]*\)", "", reason)
    return f"{step}: {re.sub(r'[-+]?[0-9][0-9.,]*%?x?', '#', reason)}"


async def _all(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path, params=query)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
