"""Catching up after a start or a reconnect: the pair's events wait in a buffer until the first
candle seen whole on the stream (the cut); the candles before it come from the lake, then the
data client's history (the exchange's REST API, or the recording of a replay); then the
buffered events continue. Backfilled candles feed the features, the volatility model and the
open positions, but make no decision. The decisions on buffered events, and on the messages that
queued behind the catch-up, are catch-up decisions: their latency counts the wait, and is kept
apart from the live figure. Every candle is of the pair's base timeframe (`step`)."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from typing import Any, Protocol

from helios_core.errors import HeliosError
from helios_core.features.streaming import Bar
from helios_core.market import Book, Bucket, Disconnected, TradeTick
from helios_core.timeframes import as_datetime
from helios_live.data.client import DataClient
from helios_live.data.history import lake_bars
from helios_live.data.lake import Lake
from helios_live.kernel.pair import Arrival, Catchup, PairState
from helios_live.settings import HeliosSettings
from helios_live.trading.desk import Desk


class Pipeline(Protocol):
    """What catching up needs of the kernel."""

    settings: HeliosSettings
    client: DataClient
    lake: Lake | None
    desk: Desk

    async def on_bar(self, state: PairState, bar: Bar, received: float | None, live: bool) -> None: ...

    async def handle(self, state: PairState, arrival: Arrival) -> None: ...

    async def prices(self, pair: str, price: float, now: float) -> None: ...

    def now(self, state: PairState) -> float: ...

    async def fit_now(self, state: PairState) -> None: ...

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None: ...

    def count_error(self, kind: str) -> None: ...


async def catching_up(kernel: Pipeline, state: PairState, arrival: Arrival) -> None:
    """Buffer a pair's live events until its cut, then backfill up to the cut and replay them."""
    catchup = state.catchup
    assert catchup is not None  # noqa: S101 -- the caller checked
    item, step = arrival.event, state.step
    if isinstance(item, TradeTick | Bucket):
        if catchup.cut is None:
            if isinstance(item, TradeTick):
                # A trade's candle began before we saw it: that candle comes from the backfill.
                catchup.cut = item.ts - item.ts % step + step
            elif item.period == step:  # a bucket of another period is no candle of this pair
                catchup.cut = item.start  # it carries its whole candle so far: it can stay live
        catchup.buffer.append(arrival)
    elif isinstance(item, Book):
        await kernel.handle(state, arrival)  # through the price guard
    elif isinstance(item, Disconnected):
        catchup.buffer.clear()
        catchup.cut = None
    now = kernel.now(state)
    if catchup.cut is not None and now >= catchup.cut + kernel.settings.live.close_grace_s:
        await _catch_up(kernel, state, catchup)


async def _catch_up(kernel: Pipeline, state: PairState, catchup: Catchup) -> None:
    cut = catchup.cut
    assert cut is not None  # noqa: S101
    settings = kernel.settings
    start = catchup.resume_from
    warm_up = start is None
    bars: list[Bar] = []
    if start is None:
        start = cut - settings.live.warmup_days * 86_400
        if kernel.lake is not None:
            # The volatility model wants a longer history than the features: the older part
            # feeds only its returns.
            seed = cut - max(settings.live.warmup_days, settings.risk.garch_days) * 86_400
            bars = await asyncio.to_thread(lake_bars, kernel.lake, state.pair, seed, cut, state.step)
            vol = kernel.desk.trader.vol[state.pair]
            for bar in (b for b in bars if b.ts < start):
                vol.on_bar(bar, state.step)
            bars = [b for b in bars if b.ts >= start]
            if bars:
                start = bars[-1].ts + state.step
    source = "lake" if bars else "none"
    if start < cut:
        try:
            fetched = await kernel.client.history(state.pair, start, cut)
        except HeliosError as exc:
            fetched = []
            kernel.count_error("backfill")
            await kernel.record("BACKFILL_FAILED", pair=state.pair, error=str(exc), start=start, end=cut)
        bars += fetched
        source = f"{source}+rest" if fetched else source
    for i, bar in enumerate(bars):
        plausible = state.guard.plausible(bar.close, bar.ts + state.step)
        await kernel.on_bar(state, bar, None, live=False)
        # Positions lived through the hole too: what the missed candles did to them counts,
        # but not a close the price guard would not believe live.
        if plausible:
            await kernel.prices(state.pair, bar.close, bar.ts + state.step)
        if i % 500 == 499:
            await asyncio.sleep(0)  # a long warm-up must not stall the other pairs or the API
    state.backfilled += len(bars)
    if warm_up:
        await kernel.fit_now(state)  # the first decision must not wait for the scheduled fit
    state.builder.resume_at(cut)
    state.catchup = None
    # What start-up and the warm-up built lives as long as the engine: out of the collector's
    # sight, or a full collection over it stalls the event loop for 0.2-0.3 s inside a decision
    # about once an hour (a profile of bench_decision: 375,000 objects tracked).
    gc.freeze()
    await kernel.record(
        "CATCH_UP", pair=state.pair, candles=len(bars), source=source, until=as_datetime(cut).isoformat()
    )
    state.catching_up_until = math.inf  # the buffered events' decisions are the catch-up's
    try:
        for buffered in catchup.buffer:
            if isinstance(buffered.event, TradeTick) and buffered.event.ts < cut:
                continue  # its minute came whole from the backfill
            state.now = buffered.at
            await kernel.handle(state, buffered)
    finally:
        # ... and so are those of the messages that queued behind it meanwhile. A replay's events
        # have no receive time and measure nothing: no clock is read for them.
        measured = any(a.received is not None for a in catchup.buffer)
        state.catching_up_until = time.perf_counter() if measured else -math.inf
