"""VALR as the kernel's data client: the trade WebSocket for live events, the public REST API
for the candles of a hole (its trade history for short holes, its 1m buckets for long ones)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pandas as pd

from helios_core.candles import to_bars, trades_to_candles
from helios_core.features.streaming import Bar
from helios_core.market import Disconnected, Reconnected
from helios_core.timeframes import Timeframe, as_datetime
from helios_live.data.client import ClientStats, EventSink
from helios_live.data.history import minutes
from helios_live.venues.valr.rest import ValrRestSource
from helios_live.venues.valr.stream import ValrStream
from helios_live.venues.valr.wire import Control, Parser

ONE_MINUTE = Timeframe.parse("1m")


class ValrDataClient:
    def __init__(
        self,
        url: str,
        rest: ValrRestSource | None,
        *,
        candles: str = "trades",
        backfill_trades_max_minutes: int = 120,
    ) -> None:
        self.url = url
        self.parser = Parser(())
        self.stream: ValrStream | None = None
        self.rest = rest
        self.from_trades = candles == "trades"
        self.trades_max_minutes = backfill_trades_max_minutes
        self.sink: EventSink | None = None

    @property
    def stats(self) -> ClientStats:
        return self.stream.stats if self.stream is not None else ClientStats()

    @property
    def accepted(self) -> Counter[str]:
        return self.parser.accepted

    @property
    def rejected(self) -> Counter[str]:
        return self.parser.rejected

    def listen(self, pairs: tuple[str, ...], sink: EventSink) -> None:
        """Parse messages of `pairs` into `sink` (what `run` does before it connects)."""
        self.parser.pairs = frozenset(pairs)
        self.sink = sink

    async def run(self, pairs: tuple[str, ...], sink: EventSink) -> None:
        self.listen(pairs, sink)
        kind = "NEW_TRADE" if self.from_trades else "NEW_TRADE_BUCKET"
        subscriptions = {kind: pairs, "AGGREGATED_ORDERBOOK_UPDATE": pairs, "MARKET_SUMMARY_UPDATE": pairs}
        self.stream = ValrStream(self.url, subscriptions, self)
        try:
            await self.stream.run()
        except Exception as exc:
            # A failure past the stream's own reconnects (in our handler): whatever comes after
            # the restart may have a hole before it, as after any disconnect.
            stats = self.stream.stats
            if stats.connected:
                stats.connected, stats.disconnects = False, stats.disconnects + 1
                await sink(Disconnected(f"{type(exc).__name__}: {exc}"), None)
            raise

    def silent_s(self) -> float | None:
        last = self.stream.last_message if self.stream is not None else None
        return None if last is None else time.monotonic() - last

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        if self.rest is not None:
            self.rest.close()

    # the stream's handler ---------------------------------------------------------------------
    async def on_message(self, raw: str | bytes, received: float) -> None:
        event = self.parser.parse(raw)
        if event is None or isinstance(event, Control) or self.sink is None:
            return
        await self.sink(event, received)

    async def on_connected(self) -> None:
        if self.sink is not None:
            await self.sink(Reconnected(self.url), None)

    async def on_disconnected(self, reason: str) -> None:
        if self.sink is not None:
            await self.sink(Disconnected(reason), None)

    # history -----------------------------------------------------------------------------------
    async def history(self, pair: str, start: float, end: float) -> list[Bar]:
        if self.rest is None or start >= end:
            return []
        from_trades = self.from_trades and minutes(start, end) <= self.trades_max_minutes
        bars = await asyncio.to_thread(rest_bars, self.rest, pair, start, end, from_trades)
        return [b for b in bars if b.ts >= start and b.ts + 60 <= end]


def rest_bars(source: ValrRestSource, pair: str, start: float, end: float, from_trades: bool) -> list[Bar]:
    """Closed 1m candles in `[start, end)` from the REST API: built from the trade history
    (exact, with trade counts and taker volume) or the exchange's buckets (OHLCV only)."""
    first, last = as_datetime(start), as_datetime(end)
    if from_trades:
        trades = source.fetch_trades(pair, first, last)
        frame = trades_to_candles(trades, ONE_MINUTE, pd.Timestamp(last))
    else:
        frame = source.fetch_candles(pair, first, last).candles
    return to_bars(frame)
