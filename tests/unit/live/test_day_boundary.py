"""The day's starting equity (the daily-loss limit's base) rolls over at UTC midnight of the
engine's clock, a replay's included, and a restart restores it from the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helios_core.trading.account import DAY
from helios_live.data.recorded import buckets
from tests.conftest import sample
from tests.live_support import BTC, HISTORY, feed, in_process, start_trading, trading_kernel


def test_the_day_rolls_over_at_midnight_of_a_replay_and_a_restart_keeps_its_start(tmp_path: Path) -> None:
    kernel, _ = trading_kernel(tmp_path)
    candles = sample(BTC).head(HISTORY + 340)
    live = buckets("BTCPERP", candles.iloc[HISTORY:].reset_index(drop=True))
    midnight = next(i for i, b in enumerate(live) if b.start % DAY == 0)  # 2022-01-02 00:00 of the replay
    seen: dict[str, float] = {}

    async def run() -> None:
        await start_trading(kernel, live, midnight - 5)
        account = kernel.desk.account
        seen["yesterday"] = account.day_start_equity
        await feed(kernel, live[midnight - 5 : midnight])
        seen["at_midnight"] = account.equity
        await feed(kernel, live[midnight : midnight + 20])
        seen["today"], seen["day"] = account.day_start_equity, account.day
        await kernel.close()
        restarted = in_process(kernel.settings, lake=kernel.lake)
        await restarted.start(connect=False)
        seen["restored"], seen["restored_day"] = restarted.desk.account.day_start_equity, restarted.desk.account.day
        await feed(restarted, live[midnight + 20 : midnight + 30])
        seen["after_restart"] = restarted.desk.account.day_start_equity
        await restarted.close()

    asyncio.run(run())
    assert seen["day"] == live[midnight].start // DAY
    assert seen["today"] != seen["yesterday"]  # a position was open: equity moved during the first day
    assert abs(seen["today"] - seen["at_midnight"]) < 0.01 * seen["at_midnight"]  # the first price of the day
    assert seen["restored"] == seen["today"] and seen["restored_day"] == seen["day"]
    assert seen["after_restart"] == seen["today"]  # the same day: not reset to the equity at the restart


def test_a_command_before_the_first_event_after_a_restart_keeps_the_replays_day(tmp_path: Path) -> None:
    """With the exchange clock there is no market time until the first event: an emergency stop
    then closes at the latest time the ledger knows, not at the machine's (years ahead)."""
    kernel, live = trading_kernel(tmp_path)
    seen: dict[str, float] = {}

    async def run() -> None:
        await start_trading(kernel, live, 40)
        assert kernel.desk.account.positions
        seen["day"] = kernel.desk.account.day
        await kernel.close()
        restarted = in_process(kernel.settings, lake=kernel.lake)
        await restarted.start(connect=False)
        await restarted.set_emergency_stop(True, "drill before any data")
        seen["after"] = restarted.desk.account.day
        await restarted.close()

    asyncio.run(run())
    closed = [p for p in kernel.ledger.positions(limit=100).items if p["close_reason"] == "EMERGENCY"]
    assert closed and all(p["closed_at"].timestamp() < live[41].start for p in closed)
    assert seen["after"] == seen["day"]
