"""/health tells the truth: a stream replaying the past, stale candles, failing or backed-up
ledger writes each make the engine unhealthy, with the reason named."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from helios_core.market import TradeTick
from helios_live.clock import LiveClock
from helios_live.kernel.kernel import Kernel
from tests.live_support import feed, in_process, live_settings, make_bundle


def _kernel(home: Path) -> Kernel:
    settings = live_settings(home, live_candles="trades", live_clock="system")
    make_bundle(settings.models_root, lean=0)
    return in_process(settings, clock=LiveClock())


def test_a_stream_replaying_the_past_and_stale_candles_are_unhealthy(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    seen: dict[str, dict[str, str]] = {}

    async def run() -> None:
        await kernel.start(connect=False)
        old = time.time() - 75  # 75 s behind the machine's clock, as a stale stream is
        await feed(kernel, [TradeTick("BTCPERP", old + i, 40_000.0, 0.01, True, f"t{i}") for i in range(5)])
        seen["stale"] = kernel.health_checks()
        assert kernel.started_at is not None
        kernel.started_at -= 600  # ten minutes after the start, and still no candle
        seen["no_candle"] = kernel.health_checks()
        kernel.states["BTCPERP"].last_ts = int(time.time()) - 600  # its last candle ten minutes ago
        seen["old_candle"] = kernel.health_checks()
        await kernel.close()

    asyncio.run(run())
    assert "replaying the past" in seen["stale"]["stream_current"]
    assert seen["stale"]["candles_fresh"] == ""  # only just started: the first candle may still come
    assert "BTCPERP none yet" in seen["no_candle"]["candles_fresh"]
    assert "last candle older than 300 s: BTCPERP 5" in seen["old_candle"]["candles_fresh"]


def test_failing_writes_are_named_in_health_and_stop_entries(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)

    async def run() -> None:
        await kernel.start(connect=False)
        assert kernel.halted() == "" and kernel.health_checks()["ledger_writes"] == ""
        kernel.ledger_writer.health.fail(OSError("disk full"))
        assert "disk full" in kernel.health_checks()["ledger_writes"]
        assert kernel.halted().startswith("ledger writes failing")
        await kernel.record("PROBE")  # a write that succeeds clears it
        assert kernel.health_checks()["ledger_writes"] == "" and kernel.halted() == ""
        await kernel.close()

    asyncio.run(run())
