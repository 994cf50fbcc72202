"""The price guard in the kernel: which price of each event it judges and as what evidence, the
books that may confirm a move, and the engine events of its quarantines (docs/live.md, "The price
guard").

A trade is judged by its price (its trade id is its evidence); a bucket by its close, with its
open, high and low clamped to the wick band (an exchange's bucket keeps a bad print's high for the
rest of its minute; a repeat of the same close and volume is no new evidence); a market summary
only echoes the last trade, so it is used when plausible and otherwise ignored, never held and
never evidence. A book whose mid is implausible is kept aside: it may confirm a move, but fills
never walk it until the move is confirmed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Protocol

from helios_core.market import Book, Bucket, Disconnected, MarketSummary, PairEvent, TradeTick
from helios_core.trading.fills import FillModel, mid
from helios_live.kernel.pair import PairState
from helios_live.trading.desk import Desk

RECORD_EVERY_S = 60.0  # at most one quarantine and one rejection event per pair per minute


class Recorder(Protocol):
    desk: Desk

    def now(self, state: PairState) -> float: ...

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None: ...


async def admit(kernel: Recorder, state: PairState, event: PairEvent) -> list[PairEvent]:
    """The events to apply now: `event` itself, nothing (held or ignored), or what it confirms."""
    guard, now, fills = state.guard, kernel.now(state), kernel.desk.config.fills
    if isinstance(event, Book):
        level = mid(event, event.ts if event.ts is not None else now, fills)
        if level is not None and not guard.plausible(level, now):
            state.suspect_book = event  # not used for fills; may confirm a move
            state.books_dropped += 1
            return []
        state.book, state.suspect_book = event, None
        return [event]
    if isinstance(event, Disconnected):
        dropped = guard.drop()  # what follows the hole is judged against the backfill
        if dropped:
            await _record(kernel, state, "PRICE_REJECTED", now, prices=dropped, reason="disconnected")
        return [event]
    if isinstance(event, MarketSummary):
        if guard.plausible(event.last, event.ts):
            return [event]
        state.summaries_ignored += 1
        return []
    key: object
    if isinstance(event, TradeTick):
        price, ts, key = event.price, event.ts, event.trade_id or None
    elif isinstance(event, Bucket):
        ts = now if not math.isnan(now) else float(event.start + event.period)
        event = _clamped(state, event, ts)
        price, key = event.close, (event.start, event.close, event.volume)
    else:
        return [event]
    book = mid(state.suspect_book or state.book, ts, fills)
    result = guard.admit(event, price, ts, book, key)
    if result.quarantined:
        await _record(kernel, state, "PRICE_QUARANTINED", ts, price=price, reference=guard.reference,
                      band=round(guard.band(ts), 6), event=type(event).__name__)  # fmt: skip
    if result.dropped:
        await _record(kernel, state, "PRICE_REJECTED", ts, prices=result.dropped, reference=guard.reference)
    if result.confirmed or (result.released and state.suspect_book is not None):
        _settle_books(state, ts, fills)
    if result.confirmed:
        await kernel.record("PRICE_CONFIRMED", pair=state.pair, prices=result.confirmed, price=guard.reference)
    return result.released


def _clamped(state: PairState, bucket: Bucket, ts: float) -> Bucket:
    bounds = state.guard.wick_range(ts)
    if bounds is None:
        return bucket
    lo, hi = bounds
    o = min(max(bucket.open, lo), hi)
    c = bucket.close
    high, low = max(min(bucket.high, hi), o, c), min(max(bucket.low, lo), o, c)
    if (o, high, low) == (bucket.open, bucket.high, bucket.low):
        return bucket
    state.wicks_clamped += 1
    return replace(bucket, open=o, high=high, low=low)


def _settle_books(state: PairState, ts: float, fills: FillModel) -> None:
    """After the reference moved: the suspect book is the market if it now agrees, and a book
    from before the move is no longer one to fill against."""
    guard = state.guard
    for book in (state.suspect_book, state.book):
        level = mid(book, ts, fills)
        if book is not None and level is not None and guard.plausible(level, ts):
            state.book, state.suspect_book = book, None
            return
    state.book = state.suspect_book = None


async def _record(kernel: Recorder, state: PairState, kind: str, ts: float, **detail: Any) -> None:
    """An engine event for a quarantine or a rejection, at most one of each per minute per pair
    (garbage at a new level every message must not become a ledger write each); the guard's
    counts in the metrics stay exact."""
    last = state.guard_recorded.get(kind, -math.inf)
    if math.isfinite(ts) and ts - last < RECORD_EVERY_S:
        return
    state.guard_recorded[kind] = ts
    await kernel.record(kind, pair=state.pair, ts=ts, **detail)
