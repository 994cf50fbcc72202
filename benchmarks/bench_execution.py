"""LIVE order placement: candle close -> order acknowledged by VALR (the fake VALR server on
loopback, which verifies every signature), 10 pairs; and the cost of one signature.

- submit latency: the engine in-process as `helios live serve` runs it (minus the market
  socket), 10 pairs, the tape, model and settings of bench_decision.py (a small untrained ONNX
  model leaning to BUY, positions timing out after 60 s so that every minute may trade), the
  ledger on SQLite, in LIVE against the fake VALR: every order is rounded to the pair's rules,
  journalled (committed) before it is sent, signed, and sent over HTTP on loopback; the account
  stream brings the fills. Measured for each decision whose chain reached execution: from the
  moment the closing trade is handed to the engine to VALR's answer to the order (the 202), as
  the kernel's `order_latencies` records it. The ten closing trades of a minute arrive together.
  The fake server runs in a process of its own (told the tape's time between minutes, to stamp
  fills with); it still shares the machine's cores, and loopback has no
  distance: these figures are Helios's own cost plus a local server's, not a forecast of VALR's
  round trip from South Africa.
- sign: `Credentials.headers` for a market order's body (one HMAC-SHA512 and the headers), in
  microseconds.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import timeit
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_decision import returns_5m  # noqa: E402 -- after the path set-up above
from benchmarks.bench_stream import CLOSE_GRACE_S, PAIRS, milliseconds, replay, tape  # noqa: E402
from helios_core.risk.garch import fit  # noqa: E402
from helios_core.trading.enums import TradingMode  # noqa: E402
from helios_live.clock import ExchangeClock, LiveClock  # noqa: E402
from helios_live.kernel.kernel import Kernel  # noqa: E402
from helios_live.kernel.valr import valr_venue  # noqa: E402
from helios_live.ledger import Ledger  # noqa: E402
from helios_live.models.registry import Registry  # noqa: E402
from helios_live.trading.desk import CONFIRMATION  # noqa: E402
from helios_live.trading.volatility import INTERVAL_S  # noqa: E402
from helios_live.venues.valr.data_client import ValrDataClient  # noqa: E402
from helios_live.venues.valr.signing import Credentials  # noqa: E402
from helios_live.venues.valr.simulator.fake import PairSpec  # noqa: E402
from helios_live.venues.valr.trading import order_request  # noqa: E402
from tests.live_support import live_settings, make_bundle  # noqa: E402

KEY, SECRET = "bench-key-0123456789", "bench-secret-" + "0" * 40


def valr_kernel(settings: Any) -> Kernel:
    """bench_stream's kernel (its VALR client fed by hand, no socket), with the VALR venue
    `helios live serve` wires in."""
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    client = ValrDataClient(settings.live.ws_url, None, candles=settings.live.candles)
    registry = Registry(settings.models_root)
    return Kernel(settings, ledger, registry, ExchangeClock(), client, ops_clock=LiveClock(), venue=valr_venue)


def sign_us() -> float:
    credentials = Credentials(KEY, SECRET)
    request = order_request("BTCZAR", "BUY", Decimal("0.0012"), "BTCZAR-1733000000-v1-O")
    loops = 20_000
    seconds = timeit.timeit(
        lambda: credentials.headers(1733000000000, "POST", request.path, request.body), number=loops
    )
    return round(seconds / loops * 1e6, 2)


async def submit_run(frame: pd.DataFrame, home: Path, url: str) -> dict[str, float]:
    settings = live_settings(
        home,
        live_pairs=PAIRS,
        live_candles="trades",
        model_window=16,
        risk_max_hold_s=60.0,
        risk_daily_loss=0.99,  # as bench_decision: fees must not stop the trading that is timed
        risk_max_drawdown=0.99,
        risk_refit_s=1e9,
        live_close_grace_s=CLOSE_GRACE_S,
        valr_api_key=KEY,
        valr_api_secret=SECRET,
        valr_base_url=url,
        valr_account_ws_url=url.replace("http://", "ws://") + "/ws/account",
        valr_reconcile_s=86_400,
    )
    make_bundle(settings.models_root, window=16, lean=0)
    engine = valr_kernel(settings)
    model = fit(returns_5m(), INTERVAL_S)

    def install(minute: int) -> None:
        if minute == 1:
            for vol in engine.desk.trader.vol.values():
                vol.install(model, vol.total)

    await engine.start(connect=False)
    await engine.set_mode(TradingMode.LIVE, CONFIRMATION, "benchmark")
    await engine.set_auto_trading(True)
    clock = httpx.Client(base_url=url)

    def between_minutes(minute: int) -> None:
        install(minute)
        # The fake's fills are stamped on the tape's time, which the engine runs on; set between
        # minutes, outside what is timed.
        clock.post("/sim/clock", json={"at": engine.clock.timestamp()})

    await replay(engine, frame, True, between_minutes)
    await asyncio.sleep(0.5)  # the last fills come in on the account stream
    samples = list(engine.order_latencies)
    stages = {name: round(h.sum / h.count * 1000, 3) for name, h in engine.stages.snapshot().items() if h.count}
    print("mean ms per stage:", stages)
    assert engine.venue.live is not None  # noqa: S101 -- LIVE
    orders = engine.venue.live.rest.stats.requests
    opened = engine.desk.fills["OPEN"]
    await engine.close()
    engine.ledger.close()
    if not samples:
        raise SystemExit("no decision reached VALR: the benchmark measured nothing")
    return {"orders_timed": len(samples), "valr_requests": orders, "positions_opened": opened, **milliseconds(samples)}


def main() -> None:
    frame = tape()
    mid = float(frame["price"].median())
    spec = PairSpec("XRP", "ETH", mid, tick=1e-8, min_base="1", max_base="100000000", min_quote="0.0001",
                    base_decimals=2, level_size=1e7)  # fmt: skip
    figures: dict[str, object] = {"benchmark": "bench_execution", "pairs": len(PAIRS)}
    figures["sign_us"] = signed = sign_us()
    print(f"one signature (HMAC-SHA512 and headers): {signed} us")
    balances = {"ETH": 1e12, "XRP": 1e15}
    pairs = json.dumps(dict.fromkeys(PAIRS, asdict(spec)))
    command = [sys.executable, "-m", "helios_live.venues.valr.simulator.fake", "--api-key", KEY,
               "--pairs", pairs, "--balances", json.dumps(balances)]  # fmt: skip
    server = subprocess.Popen(  # noqa: S603 -- our own fake server
        command, cwd=REPO, env=os.environ | {"FAKE_VALR_SECRET": SECRET}, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None  # noqa: S101 -- piped above
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            row = asyncio.run(submit_run(frame, Path(tmp), url))
    finally:
        server.terminate()
        server.wait(10)
    figures["submit"] = row
    print(
        f"close -> order acknowledged by the fake VALR on loopback, 10 pairs closing together: p50 {row['p50_ms']} ms,"
        f" p99 {row['p99_ms']} ms ({row['orders_timed']} orders timed, {row['valr_requests']} requests to VALR,"
        f" {row['positions_opened']} positions opened)"
    )
    figures["submit_p50_ms"], figures["submit_p99_ms"] = row["p50_ms"], row["p99_ms"]
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
