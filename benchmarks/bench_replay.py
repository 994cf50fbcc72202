"""A month of candles through the kernel on the replay client, and the same month through the
WebSocket simulator at its top speed: how much faster a backtest is than a replay over sockets.

Input: the BTC-PERP month at 1m (data/sample, 45,031 real candles, 2021-12-31 .. 2022-02-01),
replayed as the exchange's 1m buckets with a market summary every 60 s, on one pair.
Model: the demo's small model (the ACTIVE one in `--model-home`, default `.helios`, left there
by `make demo`) with the demo's confidence floor of 0.40 so that paper execution is exercised;
without it, an untrained small model of the same shape that leans to BUY (inference costs the
same whatever the weights), and the output says which. Paper execution, every portfolio limit,
GARCH refits every 4 h of the replay in a process of their own, a SQLite ledger per run.

- kernel: `helios_live.backtest.runner.replay` in lockstep under the TestClock, timed from its
  call to its return (ledger migration, model load and warm-up included).
- socket: the live service's kernel (`build_kernel`, the VALR client, the exchange-time clock)
  against the simulator on loopback at speed 1e7, timed from the kernel's start to the moment
  every message the simulator sent is handled and stored.

Prints a table; the last line is one JSON object with `candles`, `seconds`, `candles_per_s`
(the kernel's) and `socket_over_kernel` (time per candle over sockets / through the kernel).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helios_live.backtest.runner import replay  # noqa: E402 -- after the path set-up above
from helios_live.data.recorded import Recorded, epoch_seconds  # noqa: E402
from helios_live.kernel.build import build_kernel  # noqa: E402
from helios_live.ledger import Ledger  # noqa: E402
from helios_live.models.registry import Registry  # noqa: E402
from helios_live.settings import HeliosSettings  # noqa: E402
from helios_live.venues.valr.simulator.exchange import ExchangeSimulator  # noqa: E402

BTC = REPO / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
SUMMARY_EVERY_S = 60.0
DEMO_MIN_CONFIDENCE = 0.40


def model(home: Path, model_home: Path) -> tuple[str, str]:
    """The version to replay with, copied into `home`'s registry, and what it is."""
    active = Registry(model_home / "models").active() if (model_home / "models").exists() else None
    if active is not None:
        source = model_home / "models" / active
        target = home / "models" / active
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source.resolve(), target)
        Registry(home / "models").promote(active, "benchmark")
        return active, f"the demo's model {active} from {model_home}"
    from tests.live_support import make_bundle  # noqa: PLC0415 -- needs torch, only without a demo model

    return make_bundle(home / "models", window=16, lean=0), "an untrained small model leaning to BUY (no demo model)"


def settings(home: Path, name: str) -> HeliosSettings:
    return HeliosSettings(
        home=home,
        database_url=f"sqlite:///{home / name}.db",
        live_pairs=("BTCPERP",),
        live_candles="buckets",
        live_clock="exchange",
        live_min_confidence=DEMO_MIN_CONFIDENCE,
        live_autostart=False,
    )


async def through_the_kernel(home: Path, recorded: Recorded, version: str) -> dict[str, Any]:
    start = epoch_seconds(recorded.candles["BTCPERP"]["ts"].iloc[0])
    began = time.perf_counter()
    summary = await replay(
        settings(home, "kernel"), recorded, start=start, model_version=version, summary_every_s=SUMMARY_EVERY_S
    )
    seconds = time.perf_counter() - began
    return {"candles": summary.candles, "predictions": summary.predictions, "fills": summary.opened + summary.closed,
            "seconds": seconds}  # fmt: skip


async def through_the_sockets(home: Path, recorded: Recorded) -> dict[str, Any]:
    candles = recorded.candles["BTCPERP"]
    simulator = ExchangeSimulator(
        recorded, speed=1e7, start=candles["ts"].iloc[0].to_pydatetime(), summary_every_s=SUMMARY_EVERY_S,
        max_queue=10_000_000,
    )  # fmt: skip
    simulator.pause()
    async with simulator:
        service = settings(home, "socket").replace(live_ws_url=simulator.ws_url, valr_base_url=simulator.rest_url)
        ledger = Ledger(service.resolved_database_url)
        ledger.migrate()
        kernel = build_kernel(service, ledger)
        began = time.perf_counter()
        await kernel.start()
        while not kernel.client.accepted["SUBSCRIBED"]:  # noqa: ASYNC110 -- polling the client's own counter
            await asyncio.sleep(0.01)
        await kernel.set_auto_trading(True)
        simulator.resume()
        await simulator.finished.wait()
        sent = await simulator.sent_out()
        market = ("NEW_TRADE_BUCKET", "MARKET_SUMMARY_UPDATE")
        while sum(kernel.client.accepted[k] for k in market) < sent:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await kernel.drain()
        seconds = time.perf_counter() - began
        state = kernel.states["BTCPERP"]
        result = {"candles": state.candles, "predictions": state.predictions, "seconds": seconds,
                  "fills": kernel.desk.fills.total(), "disconnects": kernel.client.stats.disconnects}  # fmt: skip
        await kernel.close()
        ledger.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-home", type=Path, default=REPO / ".helios", help="where `make demo` left its model")
    args = parser.parse_args()
    candles = pd.read_parquet(BTC)
    recorded = Recorded(candles={"BTCPERP": candles})
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        version, which = model(home, args.model_home)
        print(f"model: {which}")
        kernel = asyncio.run(through_the_kernel(home, recorded, version))
        print(
            f"kernel, replay client, TestClock: {kernel['candles']:,} candles in {kernel['seconds']:.1f} s"
            f" = {kernel['candles'] / kernel['seconds']:,.0f}/s ({kernel['predictions']:,} predictions,"
            f" {kernel['fills']} fills)"
        )
        socket = asyncio.run(through_the_sockets(home, recorded))
        print(
            f"live service, simulator over sockets: {socket['candles']:,} candles in {socket['seconds']:.1f} s"
            f" = {socket['candles'] / socket['seconds']:,.0f}/s ({socket['predictions']:,} predictions,"
            f" {socket['fills']} fills)"
        )
    if socket["candles"] != kernel["candles"] or socket["disconnects"]:
        raise SystemExit(f"the two paths did not see the same month: {kernel} against {socket}")
    ratio = (socket["seconds"] / socket["candles"]) / (kernel["seconds"] / kernel["candles"])
    print(f"time per candle over sockets / through the kernel: {ratio:.2f}")
    figures = {
        "benchmark": "bench_replay",
        "model": version,
        "candles": kernel["candles"],
        "seconds": round(kernel["seconds"], 2),
        "candles_per_s": round(kernel["candles"] / kernel["seconds"], 1),
        "socket_over_kernel": round(ratio, 2),
        "kernel": kernel,
        "socket": socket,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
