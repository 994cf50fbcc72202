"""Run by test_ledger_failures in a process of its own (a regression here is a SIGBUS, which must
not take the test runner down): a trading kernel whose SQLite ledger is made immutable while it
runs, then writable again. Prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.live_support import feed, start_trading, trading_kernel


def chattr(flag: str, home: Path) -> None:
    files = [str(p) for p in home.glob("helios.db*")]
    subprocess.run(["chattr", flag, *files], check=True)  # noqa: S603, S607 -- a fixed test command


async def main(home: Path) -> dict[str, object]:
    kernel, live = trading_kernel(home)
    await start_trading(kernel, live, 30)
    kernel.desk.account.positions.clear()  # no position open: only the ledger rule can stop entries
    denied_before = kernel.verdicts["gate:denied"]
    chattr("+i", home)
    try:
        await feed(kernel, live[30:45])
        failing = kernel.health_checks()
        halted = kernel.halted()
        denied = kernel.verdicts["gate:denied"] - denied_before
    finally:
        chattr("-i", home)
    await feed(kernel, live[45:60])
    after = kernel.health_checks()
    await kernel.close()
    recovered = live[46].start
    return {
        "failing": {k: v for k, v in failing.items() if v},
        "denied_while_failing": denied,
        "halted": halted,
        "after": {k: v for k, v in after.items() if v},
        "failed_writes": kernel.ledger_writer.health.failed,
        "stored_after": sum(
            p["candle_ts"].timestamp() >= recovered for p in kernel.ledger.predictions(limit=1000).items
        ),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))  # noqa: T201 -- the parent reads it
