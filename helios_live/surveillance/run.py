"""`helios surveil`: the monitors on their own, on the machine's clock, writing to the ledger
(through the spool) until stopped; `--once` runs each check once and returns."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable

from helios_core.surveillance.events import SecurityEvent
from helios_live.clock import LiveClock
from helios_live.ledger import Ledger
from helios_live.settings import HeliosSettings
from helios_live.surveillance.build import build_surveillance
from helios_live.surveillance.monitor import CHECKS, Surveillance


def summary(surveil: Surveillance, check: str) -> str:
    """One line on what a check found."""
    if check == "oracle":
        parts = [
            f"{venue}/{asset} {r.deviation_pct:+.3f}% ({r.used} refs{', ' + str(r.severity) if r.severity else ''})"
            if r.valid
            else f"{venue}/{asset} no reference ({r.used} fresh, {r.stale} stale, {r.bad} bad)"
            for (venue, asset), r in sorted(surveil.latest.items())
        ]
    elif check == "liquidations":
        parts = [
            f"{a} {r.count} liquidations ({r.severity or 'no cascade'})" for a, r in surveil.latest_cascades.items()
        ]
    else:
        v = surveil.latest_vault
        first = surveil.vaults.last.get(surveil.settings.vault)
        if v is not None:
            parts = [f"score {v.score:.0f} ({v.severity or 'healthy'}), equity {v.equity:,.0f}"]
        elif first is not None:
            parts = [f"equity {first.equity:,.0f}: first snapshot, a score needs its history"]
        else:
            parts = ["no vault snapshot"]
    errors = {k: n for k, n in surveil.counts.items() if k.endswith(("_errors", "_bad", "_timeouts", "_missing"))}
    tail = f"; problems {errors}" if errors else ""
    return (
        f"{check}: " + ("; ".join(parts) or "nothing to report") + tail + f"; active events {len(surveil.book.active)}"
    )


async def surveil(settings: HeliosSettings, echo: Callable[[str], None], once: bool = False) -> None:
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    monitors = build_surveillance(settings, ledger, settings.live.pairs)

    def announce(event: SecurityEvent) -> None:
        state = "event" if event.active else "ended"
        where = f"{event.venue}/{event.asset}"
        echo(f"{state}: {event.severity} {event.type} on {where}, score {event.score:.0f} ({event.id})")

    monitors.on_event = announce
    monitors.on_check = lambda check: echo(summary(monitors, check))
    restored = await monitors.restore()
    echo(f"surveillance: {restored} active events restored; spool {monitors.store.path}")
    try:
        if once:
            for check in CHECKS:
                await monitors.run(check, time.time())
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        clock = LiveClock()
        s = settings.surveillance
        echo(f"every {s.oracle_s:g} s (oracle), {s.liquidations_s:g} s (liquidations), {s.vault_s:g} s (vault)")
        for check in CHECKS:  # a first look at once, then on the timers
            await monitors.run(check, clock.timestamp())
        monitors.start(clock)
        await stop.wait()
        echo("stopping")
    finally:
        await monitors.close()
        ledger.close()
