"""The price guard: one bad price, at any multiple, neither trades nor moves a candle; a real
move is confirmed by the prices after it; books away from every good price are not used."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.market import Book, Bucket, Disconnected, MarketSummary, TradeTick
from helios_core.risk.price_guard import GuardConfig, PriceGuard
from helios_core.trading.fills import FillModel
from helios_live.kernel import guard
from helios_live.kernel.pair import PairState
from tests.live_support import feed, start_trading, trading_kernel

GOOD_BAND = 0.03  # the default max_jump: no price the guard lets through is further than this


@pytest.mark.parametrize("multiple", [100.0, 0.01])
def test_one_bad_bucket_neither_closes_a_position_nor_books_a_fill_away_from_the_market(
    tmp_path: Path, multiple: float
) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await start_trading(kernel, live, 40)
        assert kernel.desk.account.positions, "a position must be open for the spike to threaten"
        good = live[40]
        spike = replace(good, open=good.close * multiple, high=good.close * multiple, low=good.close * multiple,
                        close=good.close * multiple)  # fmt: skip
        await feed(kernel, [spike, *live[40:60]])
        await kernel.close()

    asyncio.run(run())
    ledger = kernel.ledger
    closes = {b.start: b.close for b in live}
    lo, hi = min(closes.values()), max(closes.values())
    for fill in ledger.fills(limit=1000).items:
        assert lo * (1 - GOOD_BAND) <= fill["price"] <= hi * (1 + GOOD_BAND), fill
    for position in ledger.positions(limit=100).items:
        if position["realised_pnl"] is not None:
            assert abs(position["realised_pnl"]) < position["margin"], position
    kinds = [e["kind"] for e in ledger.events(limit=1000).items]
    assert "PRICE_QUARANTINED" in kinds and "PRICE_REJECTED" in kinds
    assert kernel.states["BTCPERP"].guard.dropped == 1
    candles = [b for b in kernel.states["BTCPERP"].recent if b.ts == live[40].start]
    assert candles and candles[0].high == live[40].high  # the candle never saw the spike


def test_a_real_move_is_confirmed_by_the_prices_after_it() -> None:
    guard: PriceGuard[int] = PriceGuard(GuardConfig(max_jump=0.03, confirm_ticks=3))
    assert guard.admit(0, 100.0, 0.0).released == [0]
    first = guard.admit(1, 110.0, 1.0)
    assert first.released == [] and first.quarantined
    assert guard.admit(2, 110.5, 2.0).released == []
    third = guard.admit(3, 110.2, 3.0)
    assert third.released == [1, 2, 3] and third.confirmed == 3
    assert guard.reference == 110.2 and guard.admit(4, 110.4, 4.0).released == [4]


def test_a_fresh_book_that_moved_with_the_price_confirms_it_at_once() -> None:
    guard: PriceGuard[str] = PriceGuard(GuardConfig())
    guard.admit("a", 100.0, 0.0)
    assert guard.admit("b", 120.0, 1.0, book_mid=120.1).released == ["b"]
    assert guard.admit("c", 100.0, 2.0).released == []  # now the old level is the suspect


def test_alternating_garbage_never_confirms() -> None:
    guard: PriceGuard[int] = PriceGuard(GuardConfig(confirm_ticks=2))
    guard.admit(0, 100.0, 0.0)
    for i, price in enumerate([1e4, 1.0, 1e4, 1.0, 1e4], start=1):
        assert guard.admit(i, price, float(i)).released == []
    assert guard.reference == 100.0


def test_sigma_widens_the_band_for_a_volatile_pair_and_with_time() -> None:
    guard: PriceGuard[int] = PriceGuard(GuardConfig(max_jump=0.01, sigmas=5))
    price = 100.0
    for i in range(100):
        price *= 1.008 if i % 2 else 1 / 1.008  # each within the 1% floor: all plausible
        guard.on_candle(60.0 * (i + 1), price)
    minute = guard.band(6000.0 + 60)
    assert minute > math.log1p(0.01)
    assert guard.band(6000.0 + 3600) > minute  # an hour without a price: more may have happened
    assert guard.plausible(price * 1.03, 6060.0)  # 5 sigmas of 0.8% a minute, not the 1% floor


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    steps=st.lists(st.floats(-0.004, 0.004), min_size=5, max_size=60),
    at=st.integers(0, 59),
    log_multiple=st.floats(-25, 25).filter(lambda x: abs(x) > math.log1p(GOOD_BAND) + 1e-6),
    confirm=st.integers(2, 5),
)
def test_no_single_tick_at_any_multiple_gets_through(
    steps: list[float], at: int, log_multiple: float, confirm: int
) -> None:
    """Good prices walk around 100; one tick at any multiple outside the band, anywhere in the
    stream, is never released, and every price released is one of the good ones."""
    guard: PriceGuard[float] = PriceGuard(GuardConfig(max_jump=GOOD_BAND, confirm_ticks=confirm))
    good, price = [], 100.0
    for step in steps:
        price *= math.exp(step)
        good.append(price)
    stream = list(good)
    spot = at % len(stream)
    bad = stream[spot] * math.exp(log_multiple)
    stream.insert(spot + 1, bad)
    released = []
    for i, p in enumerate(stream):
        released += guard.admit(p, p, float(i)).released
    assert bad not in released
    assert released == good


class _Kernel:
    """What the kernel's guard step needs: the desk's fill model, the pair's time, a recorder."""

    def __init__(self) -> None:
        self.desk = SimpleNamespace(config=SimpleNamespace(fills=FillModel()))
        self.at = 1_700_000_000.0
        self.recorded: list[str] = []

    def now(self, state: PairState) -> float:
        return self.at

    async def record(self, kind: str, pair: str | None = None, **detail: object) -> None:
        self.recorded.append(kind)

    def count_error(self, kind: str) -> None:
        pass


def _admit(kernel: _Kernel, state: PairState, *events: object) -> list[object]:
    async def run() -> list[object]:
        out: list[object] = []
        for event in events:
            kernel.at += 1
            out += await guard.admit(kernel, state, event)  # type: ignore[arg-type]
        return out

    return asyncio.run(run())


def _trade(price: float, at: float, trade_id: str) -> TradeTick:
    return TradeTick("BTCZAR", at, price, 0.01, True, trade_id)


def _book(bid: float, ask: float, at: float) -> Book:
    return Book("BTCZAR", at, ((bid, 1.0),), ((ask, 1.0),))


def test_summaries_echoing_a_bad_trade_and_repeats_of_it_confirm_nothing() -> None:
    kernel, state = _Kernel(), PairState("BTCZAR", 2.0, 4)
    t = kernel.at
    first = _admit(kernel, state, _trade(100.0, t, "t1"))
    echoes = [MarketSummary("BTCZAR", t + 2 + i, 200.0, 99.9, 100.1) for i in range(5)]
    released = _admit(kernel, state, _trade(200.0, t + 1, "t2"), *echoes, _trade(200.0, t + 8, "t2"))

    assert len(first) == 1 and released == []
    assert state.guard.reference == 100.0 and state.summaries_ignored == 5
    assert kernel.recorded == ["PRICE_QUARANTINED"]


def test_a_bucket_keeps_no_bad_wick_and_its_repeats_are_no_evidence() -> None:
    kernel, state = _Kernel(), PairState("BTCZAR", 2.0, 4)
    minute = int(kernel.at // 60 * 60)
    _admit(kernel, state, Bucket("BTCZAR", minute, 60, 100.0, 100.5, 99.5, 100.2, 1.0))
    spiked = Bucket("BTCZAR", minute, 60, 100.0, 10_000.0, 99.5, 100.3, 1.1)
    (clamped,) = _admit(kernel, state, spiked)
    bad = Bucket("BTCZAR", minute, 60, 100.0, 10_000.0, 99.5, 9_000.0, 1.2)
    held = _admit(kernel, state, bad, bad, bad, bad)

    assert isinstance(clamped, Bucket) and clamped.close == 100.3 and clamped.high < 110.0
    assert state.wicks_clamped >= 1 and held == [] and state.guard.reference == 100.3


def test_a_book_that_moved_confirms_a_crash_and_fills_never_walk_the_book_from_before_it() -> None:
    kernel, state = _Kernel(), PairState("BTCZAR", 2.0, 4)
    t = kernel.at
    _admit(kernel, state, _trade(100.0, t, "t1"), _book(99.9, 100.1, t + 1))
    assert state.book is not None and state.book.bids[0][0] == 99.9
    released = _admit(kernel, state, _book(89.9, 90.1, t + 2), _trade(90.0, t + 3, "t2"))

    assert [type(e).__name__ for e in released] == ["TradeTick"]  # the book confirmed it at once
    assert state.guard.reference == 90.0
    assert state.book is not None and state.book.bids[0][0] == 89.9 and state.suspect_book is None


def test_a_disconnect_drops_what_is_held() -> None:
    kernel, state = _Kernel(), PairState("BTCZAR", 2.0, 4)
    t = kernel.at
    _admit(kernel, state, _trade(100.0, t, "t1"), _trade(150.0, t + 1, "t2"))
    assert state.guard.holding == 1
    _admit(kernel, state, Disconnected("drop"))
    assert state.guard.holding == 0 and state.guard.dropped == 1
