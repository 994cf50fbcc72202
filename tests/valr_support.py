"""A LIVE desk wired to a VALR on loopback (the fake VALR server): the execution client, its
journal in a real ledger, and the account stream, as the kernel's venue wires them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from helios_core.trading.enums import PositionSide, TradingMode
from helios_core.trading.fills import FillModel
from helios_core.trading.position import Execution
from helios_live.execution.valr import ValrExecutionClient
from helios_live.kernel.valr import ValrVenue, stream_headers
from helios_live.ledger import Ledger
from helios_live.ledger.writer import LedgerWriter
from helios_live.settings import HeliosSettings
from helios_live.trading.desk import Desk
from helios_live.trading.trader import TradingConfig
from helios_live.venues.valr.stream import ValrStream

KEY = "helios-test-key-0001"
SECRET = "9f1c2e75c6d906ec3b32b008d0-test-secret-that-must-never-leak"  # noqa: S105 -- a test vector, not a credential
PRICE = 1_200_000.0  # the fake's default BTCZAR mid


@dataclass
class Rig:
    ledger: Ledger
    writer: LedgerWriter
    desk: Desk
    venue: ValrVenue
    stream: ValrStream
    events: list[tuple[str, dict[str, Any]]]
    task: asyncio.Task[None] | None = None
    result: Any = None  # what a test's work returned

    @property
    def client(self) -> ValrExecutionClient:
        assert self.venue.live is not None
        return self.venue.live

    async def start(self, stream: bool = True) -> Rig:
        await self.venue.enter(TradingMode.LIVE)
        if stream:
            self.task = asyncio.create_task(self.stream.run())
            await until(lambda: self.stream.stats.connected, what="the account stream")
        return self

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.venue.close()
        self.writer.hand_over()
        self.writer.executor.shutdown(wait=True)

    async def open(self, key: str = "k", margin: float = 12_000.0, side: PositionSide = PositionSide.LONG) -> Any:
        """As the kernel's execution step opens: a fill known before the answer is stored with it."""
        return await open_stored(self.desk, key, margin, side)


async def open_stored(desk: Desk, key: str, margin: float = 12_000.0, side: PositionSide = PositionSide.LONG) -> Any:
    """Open a BTCZAR position as the kernel's execution step does: a fill known before the
    answer is stored with it (a later one the desk stores itself)."""
    desk.account.mark("BTCZAR", PRICE, time.time())
    result = await desk.open(key, "BTCZAR", side, margin, 1.0, 0.05, 0.10, time.time())
    if isinstance(result, Execution):
        snapshot = desk.snapshot(time.time(), "FILL")
        await asyncio.wrap_future(desk.writer.submit(None, None, snapshots=[snapshot], opens=[(None, result)]))
        desk.opened(result)
    return result


def rig(ledger: Ledger, url: str, ws_url: str, *, timeout_s: float = 0.5, **valr: Any) -> Rig:
    """A LIVE desk on `ledger` trading through the kernel's venue against VALR at `url`."""
    settings = HeliosSettings.model_validate(
        {
            "valr": {
                "api_key": KEY,
                "api_secret": SECRET,
                "base_url": url,
                "account_ws_url": ws_url,
                "order_timeout_s": timeout_s,
                **valr,
            }
        }  # fmt: skip
    )
    writer = LedgerWriter(ledger, ThreadPoolExecutor(1))
    desk = Desk(TradingConfig(capital=1_000_000.0, fills=FillModel()), ("BTCZAR",), writer, lambda pair: None, _drop)
    events: list[tuple[str, dict[str, Any]]] = []

    async def record(kind: str, pair: str | None = None, **detail: Any) -> None:
        events.append((kind, detail))

    venue = ValrVenue(settings, desk, writer, ledger, record, writer.run, Counter())
    assert venue.live is not None
    venue.live.rest.backoff_s = 0.01
    desk.mode = TradingMode.LIVE
    desk.account.mark("BTCZAR", PRICE, time.time())
    stream = ValrStream(ws_url, {}, venue.live, headers=partial(stream_headers, venue.live.rest), backoff_s=0.05,
                        backoff_max_s=0.2)  # fmt: skip
    return Rig(ledger, writer, desk, venue, stream, events)


def _drop(event: dict[str, Any]) -> None:
    return None


async def until(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)
