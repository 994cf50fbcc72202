"""The clocks: a TestClock fires what falls due in time order, deterministically; a LiveClock
fires on the running loop; timers can be replaced and cancelled."""

from __future__ import annotations

import asyncio

import pytest

from helios_live.clock import ClockNotSet, ExchangeClock, LiveClock, TestClock, TimeEvent


def test_advancing_fires_every_due_timer_in_time_order_with_the_clock_at_its_due_time() -> None:
    clock = TestClock(start_s=1000.0)
    fired: list[tuple[str, float, float]] = []

    def note(event: TimeEvent) -> None:
        fired.append((event.name, event.ts, clock.timestamp()))

    clock.set_timer("every-10", 10.0, note)  # first at 1010
    clock.set_time_alert("once", 1015.0, note)
    clock.set_timer("every-25", 25.0, note, start_s=1005.0)

    count = asyncio.run(clock.advance_to(1032.0))

    assert fired == [
        ("every-25", 1005.0, 1005.0),
        ("every-10", 1010.0, 1010.0),
        ("once", 1015.0, 1015.0),
        ("every-10", 1020.0, 1020.0),
        ("every-10", 1030.0, 1030.0),
        ("every-25", 1030.0, 1030.0),  # a tie goes to the timer set first
    ]
    assert count == 6 and clock.timestamp() == 1032.0 and "once" not in clock.timer_names


def test_callbacks_may_be_async_and_may_set_timers_that_fire_in_the_same_advance() -> None:
    clock = TestClock(start_s=0.0)
    fired: list[str] = []

    async def first(event: TimeEvent) -> None:
        await asyncio.sleep(0)
        fired.append("first")
        clock.set_time_alert("second", event.ts + 1, lambda e: fired.append("second"))

    clock.set_time_alert("first", 5.0, first)
    asyncio.run(clock.advance_to(10.0))

    assert fired == ["first", "second"]


def test_a_replaced_or_cancelled_timer_never_fires_and_time_never_goes_back() -> None:
    clock = TestClock(start_s=0.0)
    fired: list[str] = []
    clock.set_timer("t", 5.0, lambda e: fired.append("old"))
    clock.set_timer("t", 7.0, lambda e: fired.append("new"))  # same name: replaces it
    clock.set_time_alert("gone", 3.0, lambda e: fired.append("gone"))
    clock.cancel("gone")

    asyncio.run(clock.advance_to(15.0))
    asyncio.run(clock.advance_to(2.0))  # earlier: ignored

    assert fired == ["new", "new"] and clock.timestamp() == 15.0
    clock.cancel_all()
    assert clock.timer_names == [] and clock.next_due_s() is None


def test_the_same_timers_and_advances_give_the_same_firings() -> None:
    def run() -> list[tuple[str, int]]:
        clock = TestClock(start_s=0.0)
        out: list[tuple[str, int]] = []
        for i, interval in enumerate((0.7, 1.3, 2.9)):
            clock.set_timer(f"t{i}", interval, lambda e: out.append((e.name, e.ts_ns)))

        async def advance() -> None:
            for t in (0.5, 3.3, 3.3, 9.99, 20.0):
                await clock.advance_to(t)

        asyncio.run(advance())
        return out

    assert run() == run() and len(run()) > 20


def test_an_unset_clock_has_no_time_and_refuses_relative_timers() -> None:
    clock = TestClock()

    assert not clock.is_set and clock.timestamp() != clock.timestamp()  # NaN
    with pytest.raises(ClockNotSet):
        clock.set_timer("t", 1.0, lambda e: None)
    clock.set_time_alert("absolute", 100.0, lambda e: None)  # an absolute time needs no now
    asyncio.run(clock.advance_to(50.0))
    assert clock.is_set and clock.timestamp() == 50.0


def test_an_exchange_clock_stamps_the_start_up_with_the_machines_time_until_the_data_speaks() -> None:
    clock = ExchangeClock()

    assert not clock.is_set and clock.timestamp() > 1.7e9  # today, not NaN
    asyncio.run(clock.advance_to(1_570_000_000.0))
    assert clock.is_set and clock.timestamp() == 1_570_000_000.0


def test_a_live_clock_fires_on_the_loop_and_skips_a_turn_while_the_last_is_still_running() -> None:
    async def run() -> tuple[list[float], int]:
        clock = LiveClock()
        fired: list[float] = []
        slow_runs = 0

        async def slow(event: TimeEvent) -> None:
            nonlocal slow_runs
            slow_runs += 1
            await asyncio.sleep(0.12)

        clock.set_timer("fast", 0.02, lambda e: fired.append(e.ts))
        clock.set_timer("slow", 0.03, slow)
        clock.set_time_alert("once", clock.timestamp() + 0.05, lambda e: fired.append(-1.0))
        await asyncio.sleep(0.2)
        clock.cancel_all()
        return fired, slow_runs

    fired, slow_runs = asyncio.run(run())

    assert -1.0 in fired and len([t for t in fired if t > 0]) >= 5
    ticks = [t for t in fired if t > 0]
    assert all(round((b - a) * 1000) % 20 == 0 for a, b in zip(ticks, ticks[1:], strict=False))  # on its grid
    assert 1 <= slow_runs <= 3  # 0.2 s / 0.03 s would be 6 turns: the ones that overlapped were skipped
