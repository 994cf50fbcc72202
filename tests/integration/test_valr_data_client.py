"""The VALR data client against the simulator on loopback: typed events out of the wire, and a
failure in whatever handles them reported as a disconnect, so the kernel catches up after the
restart instead of deciding across a hole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helios_core.market import Disconnected, MarketSummary, Reconnected, TradeTick
from helios_live.data.recorded import load_recorded
from helios_live.venues.valr.data_client import ValrDataClient
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator
from tests.conftest import SAMPLE

pytestmark = pytest.mark.integration


def test_a_handler_that_fails_is_heard_as_a_disconnect_before_the_failure_goes_up() -> None:
    recorded = load_recorded(SAMPLE, ["XRP-ETH"])
    heard: list[Any] = []

    async def sink(event: Any, received: float | None) -> None:
        heard.append(event)
        if sum(isinstance(e, TradeTick) for e in heard) == 20:
            raise RuntimeError("a bug in the handler")

    async def run() -> ValrDataClient:
        async with ExchangeSimulator(recorded, speed=3000.0) as sim:
            client = ValrDataClient(sim.ws_url, None, candles="trades")
            with pytest.raises(RuntimeError, match="a bug in the handler"):
                await asyncio.wait_for(client.run(("XRPETH",), sink), 15)
            return client

    client = asyncio.run(run())

    assert isinstance(heard[0], Reconnected) and isinstance(heard[-1], Disconnected)
    assert "RuntimeError: a bug in the handler" in heard[-1].reason
    assert all(isinstance(e, TradeTick | MarketSummary) for e in heard[1:-1]) and len(heard) >= 21
    assert client.stats.disconnects == 1 and not client.stats.connected
    assert client.accepted["NEW_TRADE"] >= 20 and not client.rejected
