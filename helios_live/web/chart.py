"""A pair's chart data for the dashboard: its recent closed candles as the engine holds them, a
marker at each entry and exit, and the stop and take-profit of the position open now."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from helios_live.kernel.kernel import Kernel

CANDLES = 1500
POSITIONS = 200


async def series(engine: Kernel, pair: str) -> dict[str, Any]:
    state = engine.states.get(pair)
    bars = list(state.recent)[-CANDLES:] if state is not None else []
    candles: list[dict[str, Any]] = [
        {"time": int(b.ts), "open": b.open, "high": b.high, "low": b.low, "close": b.close}
        for b in bars
        if all(math.isfinite(v) for v in (b.open, b.high, b.low, b.close))
    ]
    step = int(min((b.ts - a.ts for a, b in zip(bars, bars[1:], strict=False)), default=60))  # a gap is longer
    first = candles[0]["time"] if candles else math.inf
    page = await asyncio.to_thread(engine.ledger.positions, pair=pair, limit=POSITIONS)
    markers: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for p in page.items:
        long = p["side"] == "LONG"
        opened = _on_candle(p["opened_at"].timestamp(), step)
        if opened >= first:
            markers.append(
                {
                    "time": opened,
                    "position": "belowBar" if long else "aboveBar",
                    "shape": "arrowUp" if long else "arrowDown",
                    "color": "#2e7d32" if long else "#c62828",
                    "text": f"entry #{p['id']} {p['side']} {p['entry_price']:g}",
                }
            )
        if p["closed_at"] is not None and _on_candle(p["closed_at"].timestamp(), step) >= first:
            markers.append(
                {
                    "time": _on_candle(p["closed_at"].timestamp(), step),
                    "position": "aboveBar" if long else "belowBar",
                    "shape": "circle",
                    "color": "#455a64",
                    "text": f"exit #{p['id']} {p['close_reason']} {p['exit_price']:g}",
                }
            )
        if p["status"] == "OPEN":
            lines.append({"price": p["stop_loss_price"], "title": f"stop #{p['id']}", "color": "#c62828"})
            lines.append({"price": p["take_profit_price"], "title": f"take-profit #{p['id']}", "color": "#2e7d32"})
    if not candles:
        return {"pair": pair, "candles": [], "markers": [], "lines": lines}
    last = candles[-1]["time"]
    # An entry at the latest close sits on the candle after it, not closed yet: drawn on the last one.
    markers = [{**m, "time": min(m["time"], last)} for m in markers if m["time"] <= last + step]
    markers.sort(key=lambda m: m["time"])  # the chart library wants them in time order
    return {"pair": pair, "candles": candles, "markers": markers, "lines": lines}


def _on_candle(ts: float, step: int) -> int:
    """The open time of the candle a moment falls in: markers sit on candles."""
    return int(ts - ts % step) if step > 0 else int(ts)
