"""Run by test_valr_execution's SIGKILL test in a process of its own: a LIVE desk that journals
an opening and sends it to a VALR that holds the request open, then waits to be killed.

Usage: python -m tests.integration.valr_kill_target DATABASE_URL VALR_URL WS_URL
"""

from __future__ import annotations

import asyncio
import sys

from helios_live.ledger import Ledger
from tests.valr_support import rig


async def main(database_url: str, url: str, ws_url: str) -> None:
    ledger = Ledger(database_url)
    ledger.migrate()
    live = await rig(ledger, url, ws_url, timeout_s=60.0).start(stream=False)
    print("READY", flush=True)  # noqa: T201 -- the test reads it
    await live.open()  # the fake holds this request until the process is killed
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
