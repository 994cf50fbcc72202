"""Recorded market data as the kernel's data client: the timeline the exchange simulator plays
(`helios_live.data.recorded.timeline`), handed to the kernel directly. No sockets, no wire
format, no waiting: the replay runs as fast as the kernel decides."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pandas as pd

from helios_core.candles import to_bars, trades_to_candles, validate_trades
from helios_core.features.streaming import Bar
from helios_core.market import Book, Bucket, Reconnected, Tick, TradeTick
from helios_core.timeframes import Timeframe
from helios_live.clock import Clock
from helios_live.data.client import ClientStats, EventSink
from helios_live.data.history import minutes
from helios_live.data.recorded import Recorded, timeline


class ReplayDataClient:
    """Replays `recorded` from `start` (epoch seconds) as typed events; its history answers as the
    simulator's REST API would (from the recorded trades for holes up to `trades_max_minutes`
    when candles come from trades, else from the recorded candles), never past `clock`'s now.
    History is of the recording's timeframe (1m, or 5m for a recording of 5m candles): the base
    the kernel decides on."""

    def __init__(
        self,
        recorded: Recorded,
        clock: Clock,
        *,
        start: float,
        books: Mapping[str, Sequence[Book]] | None = None,
        summary_every_s: float | None = 10.0,
        from_trades: bool = True,
        trades_max_minutes: int = 120,
    ) -> None:
        self.recorded = recorded
        self.clock = clock
        self.start, self.books, self.summary_every_s = start, books, summary_every_s
        self.from_trades = from_trades
        self.trades_max_minutes = trades_max_minutes
        self.stats = ClientStats()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    async def run(self, pairs: tuple[str, ...], sink: EventSink) -> None:
        wanted = frozenset(pairs)
        # As a subscription to the exchange would: its trades, or its buckets, not both.
        unwanted = Bucket if self.from_trades else TradeTick
        events = timeline(self.recorded, self.books, start=self.start, summary_every_s=self.summary_every_s)
        self.stats.connects, self.stats.connected = 1, True
        await sink(Reconnected("replay"), None)
        for item in events:
            event = item.event
            if event.pair in wanted and not isinstance(event, unwanted):
                self.stats.messages += 1
                self.accepted[type(event).__name__] += 1
                await sink(event, None)
        if events and self.summary_every_s is None:
            await sink(Tick(events[-1].at + self.recorded.trailing_s), None)  # the last candle closes on the clock

    async def history(self, pair: str, start: float, end: float) -> list[Bar]:
        end = min(end, self.clock.timestamp())
        if start >= end:
            return []
        timeframe = Timeframe.parse(self.recorded.timeframe)
        first, last = pd.Timestamp(start, unit="s", tz="UTC"), pd.Timestamp(end, unit="s", tz="UTC")
        trades = self.recorded.trades.get(pair)
        if self.from_trades and trades is not None and minutes(start, end) <= self.trades_max_minutes:
            # To the millisecond, as an exchange's trade history stamps them.
            stamped = trades.assign(ts=trades["ts"].dt.floor("ms"))
            window = stamped.loc[(stamped["ts"] >= first) & (stamped["ts"] < last)]
            frame = trades_to_candles(validate_trades(window, f"recorded {pair} trades"), timeframe, last)
        else:
            candles = self.recorded.candles.get(pair)
            if candles is None:
                return []
            frame = candles.loc[(candles["ts"] >= first) & (candles["ts"] + timeframe.duration <= last)]
        step = timeframe.seconds
        return [b for b in to_bars(frame.reset_index(drop=True)) if b.ts >= start and b.ts + step <= end]

    def silent_s(self) -> float | None:
        return 0.0  # a replay is never silent

    async def close(self) -> None:
        return None
