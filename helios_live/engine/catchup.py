"""Catching up after a start or a reconnect: the pair's events wait in a buffer until the first
minute seen whole on the stream (the cut); the candles before it come from the lake, then the
exchange's REST API; then the buffered events continue. Backfilled candles feed the features,
the volatility model and the open positions, but make no decision."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from helios_core.errors import HeliosError
from helios_core.features.streaming import Bar
from helios_live.clock import as_datetime
from helios_live.engine import backfill
from helios_live.engine.pair import Catchup, PairState
from helios_live.stream.candles import STEP
from helios_live.stream.events import Book, Bucket, Trade

if TYPE_CHECKING:
    from helios_live.engine.engine import Engine

DISCONNECTED = "disconnected"


async def catching_up(engine: Engine, state: PairState, item: object, received: float) -> None:
    """Buffer a pair's live events until its cut, then backfill up to the cut and replay them."""
    catchup = state.catchup
    assert catchup is not None  # noqa: S101 -- the caller checked
    if isinstance(item, Trade | Bucket):
        if catchup.cut is None:
            start = item.ts - item.ts % STEP if isinstance(item, Trade) else item.start
            # A trade's minute began before we saw it: that minute comes from the backfill.
            # A bucket carries its whole minute so far: that minute can stay live.
            catchup.cut = start + STEP if isinstance(item, Trade) else start
        catchup.buffer.append((item, received))
    elif isinstance(item, Book):
        state.book = item
    elif item == DISCONNECTED:
        catchup.buffer.clear()
        catchup.cut = None
    now = engine.clock.now()
    if catchup.cut is not None and now >= catchup.cut + engine.settings.live_close_grace_s:
        await _catch_up(engine, state, catchup)


async def _catch_up(engine: Engine, state: PairState, catchup: Catchup) -> None:
    cut = catchup.cut
    assert cut is not None  # noqa: S101
    start = catchup.resume_from
    warm_up = start is None
    bars: list[Bar] = []
    if start is None:
        start = cut - engine.settings.live_warmup_days * 86_400
        if engine.lake is not None:
            # The volatility model wants a longer history than the features: the older part
            # feeds only its returns.
            seed = cut - max(engine.settings.live_warmup_days, engine.settings.risk_garch_days) * 86_400
            bars = await asyncio.to_thread(backfill.lake_bars, engine.lake, state.pair, seed, cut)
            vol = engine.desk.trader.vol[state.pair]
            for bar in (b for b in bars if b.ts < start):
                vol.on_bar(bar)
            bars = [b for b in bars if b.ts >= start]
            if bars:
                start = bars[-1].ts + STEP
    source = "lake" if bars else "none"
    if start < cut and engine.rest is not None:
        from_trades = (
            engine.settings.live_candles == "trades"
            and backfill.minutes(start, cut) <= engine.settings.live_backfill_trades_max_minutes
        )
        try:
            fetched = await asyncio.to_thread(backfill.rest_bars, engine.rest, state.pair, start, cut, from_trades)
        except HeliosError as exc:
            fetched = []
            engine.errors["backfill"] += 1
            await engine.record("BACKFILL_FAILED", pair=state.pair, error=str(exc), start=start, end=cut)
        bars += [b for b in fetched if b.ts >= start and b.ts + STEP <= cut]
        source = f"{source}+rest" if fetched else source
    for i, bar in enumerate(bars):
        await engine.on_bar(state, bar, None, live=False)
        # Positions lived through the hole too: what the missed candles did to them counts.
        await engine.desk.on_price(state.pair, bar.close, bar.ts + STEP, None)
        if i % 500 == 499:
            await asyncio.sleep(0)  # a long warm-up must not stall the other pairs or the API
    state.backfilled += len(bars)
    if warm_up:
        await engine.desk.refit(state.pair)  # the first decision must not wait for the scheduled fit
    state.builder.resume_at(cut)
    state.catchup = None
    await engine.record(
        "CATCH_UP", pair=state.pair, candles=len(bars), source=source, until=as_datetime(cut).isoformat()
    )
    for item, received in catchup.buffer:
        if isinstance(item, Trade) and item.ts < cut:
            continue  # its minute came whole from the backfill
        await engine.handle(state, item, received)
