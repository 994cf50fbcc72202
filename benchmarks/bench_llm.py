"""Tier 4's costs on the decision path.

- context: building one decision's market context for a ten-pair engine (30 days of 5m
  returns, 24 hours of volume, a 10-level book, 9 correlations, 50 scored predictions) and
  serialising it, in microseconds.
- step overhead: the approval step with the Claude approver, through the real SDK, against the
  fake Messages API on loopback answering at once; each decision's step time minus the server's
  own time for its request (read to response written, measured in the server). Sequential.
- cross-pair delay: the engine with 10 pairs (bench_stream's tape, paper trading as in
  bench_decision) and the Claude approver against the fake API answering every call after 3 s.
  Each minute the pairs' messages are handed to the engine one pair after another, 0.3 s apart,
  so every pair's decision runs while the calls of the pairs before it are outstanding. For each
  decision that asked the approver: its latency as the engine measures it (closing message to
  ledger commit, in its prediction event), minus its own call's time. The same run with the API answering at once (so no
  call is ever outstanding) is the baseline; `max_cross_pair_delay_ms` is the slow run's worst
  such time minus the baseline's worst: how much longer any decision took, beyond its own call,
  because other pairs' calls were waiting (the medians' difference is printed too).
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_decision import returns_5m  # noqa: E402
from benchmarks.bench_stream import CLOSE_GRACE_S, PAIRS, kernel, messages, tape  # noqa: E402
from helios_core.decision import Approved, Context, Prediction  # noqa: E402
from helios_core.market import Book  # noqa: E402
from helios_core.risk.garch import fit  # noqa: E402
from helios_core.risk.sizing import SizingConfig, size  # noqa: E402
from helios_core.trading.account import Account  # noqa: E402
from helios_live.approval.approver import Prompt, Reply  # noqa: E402
from helios_live.approval.claude import ClaudeApprover  # noqa: E402
from helios_live.approval.context import MarketContext, build  # noqa: E402
from helios_live.approval.cost import Budget  # noqa: E402
from helios_live.approval.step import Approval  # noqa: E402
from helios_live.settings import LlmSettings  # noqa: E402
from helios_live.trading.volatility import INTERVAL_S  # noqa: E402
from tests.anthropic_support import FakeAnthropic, delay, tool  # noqa: E402
from tests.live_support import live_settings, make_bundle  # noqa: E402

NOW = 1_767_225_600.0
MODEL_DELAY_S = 3.0
STAGGER_S = 0.3
WARMUP = 8  # minutes before the window is full and the volatility model installed


def context_inputs() -> tuple[Any, ...]:
    prediction = Prediction("BUY", (0.72, 0.18, 0.1), 0.72, "h")
    c = Context("P0ZAR", prediction, "m", 1_234_567.0, False, True, now=NOW)
    c.sizing = size(0.72, 0.03, "LOW", 0.0, SizingConfig())
    n = 30 * 288
    returns = (np.arange(n, dtype=np.int64) * 300 + int(NOW) - n * 300, np.random.default_rng(0).normal(0, 1e-3, n))
    volume = (60.0, [55.0 + i for i in range(24)])
    book = Book("P0ZAR", NOW, tuple((1e6 - i, 0.5) for i in range(10)), tuple((1e6 + 1 + i, 0.4) for i in range(10)))
    correlations = {f"P{i}ZAR": 0.5 + i / 50 for i in range(1, 10)}
    scored = tuple(("BUY", "SELL" if i % 3 else "BUY") for i in range(50))
    return c, returns, 0.03, "MEDIUM", volume, book, Account(100_000.0), correlations, scored


def context_us(rounds: int) -> dict[str, float]:
    args = context_inputs()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        build(*args).to_json()
        samples.append((time.perf_counter() - started) * 1e6)
    return {
        "p50_us": round(float(np.percentile(samples, 50)), 1),
        "p99_us": round(float(np.percentile(samples, 99)), 1),
    }


async def step_overhead_ms(rounds: int) -> dict[str, float]:
    c0, *rest = context_inputs()
    with FakeAnthropic() as server:
        approver = ClaudeApprover(LlmSettings(base_url=server.base_url), "sk-ant-bench", Budget(1.0, 1e6))
        view = lambda c: build(c, *rest)  # noqa: E731
        step = Approval(approver, view, lambda c: Approved("sizing"), lambda pair: c0.price)
        samples = []
        for i in range(rounds + 20):
            c = Context(c0.pair, c0.prediction, "m", c0.price, False, True, now=NOW + i)
            c.sizing = c0.sizing
            started = time.perf_counter()
            await step(c)
            elapsed = time.perf_counter() - started
            while len(server.served_s) <= i:  # noqa: ASYNC110 -- the server's thread notes its time just after its write
                await asyncio.sleep(0.0001)
            if i >= 20:  # after the connection pool and the SDK's first-call costs
                samples.append((elapsed - server.served_s[i]) * 1e3)
        await approver.aclose()
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 3),
        "p99_ms": round(float(np.percentile(samples, 99)), 3),
    }


class Timed:
    """The Claude approver, with how long each of its calls took, by pair."""

    remote = True

    def __init__(self, inner: ClaudeApprover) -> None:
        self.inner = inner
        self.name, self.model_id = inner.name, inner.model_id
        self.calls: dict[str, list[float]] = defaultdict(list)

    async def ask(self, prompt: Prompt, context: MarketContext, now: float) -> Reply:
        started = time.perf_counter()
        reply = await self.inner.ask(prompt, context, now)
        self.calls[context.pair].append(time.perf_counter() - started)
        return reply


async def engine_run(model_delay_s: float, minutes: int, home: Path) -> list[float]:
    """Per decision that asked the approver: its latency minus its own call (s)."""
    settings = live_settings(
        home,
        live_pairs=PAIRS,
        live_candles="trades",
        model_window=4,  # a short warm-up: what is measured is the approval, not the model
        risk_max_hold_s=60.0,
        risk_daily_loss=0.99,
        risk_max_drawdown=0.99,
        risk_refit_s=1e9,
        live_close_grace_s=CLOSE_GRACE_S,
        llm_deadline_s=model_delay_s + 2,
        live_step_deadline_s=model_delay_s + 5,
    )
    make_bundle(settings.models_root, window=4, lean=0)
    behaviour = delay(model_delay_s, tool()) if model_delay_s else tool()
    with FakeAnthropic(default=behaviour) as server:
        llm = LlmSettings(base_url=server.base_url, deadline_s=model_delay_s + 2)
        timed = Timed(ClaudeApprover(llm, "sk-ant-bench", Budget(1.0, 1e6)))
        engine = kernel(settings)
        engine.approval.approver = timed  # type: ignore[attr-defined]
        latencies: dict[str, list[float]] = defaultdict(list)
        publish = engine.broadcaster.publish

        def record(event: dict[str, Any]) -> None:
            if event.get("type") == "prediction" and event.get("approval") and event["latency_ms"] is not None:
                latencies[event["pair"]].append(event["latency_ms"] / 1e3)
            publish(event)

        engine.broadcaster.publish = record  # type: ignore[method-assign]
        await engine.start(connect=False)
        await engine.set_auto_trading(True)
        client = engine.client
        client.listen(engine.pairs, engine.on_event)  # type: ignore[attr-defined]
        frame = tape()
        feeds = [messages(frame, pair, 97 * i, pd.Timedelta(days=400)) for i, pair in enumerate(PAIRS)]
        for i, feed in enumerate(feeds):
            feed["pair"] = i
        model = fit(returns_5m(), INTERVAL_S)
        by_minute = list(pd.concat(feeds).groupby("minute"))
        for i, (_, minute) in enumerate(by_minute[: minutes + WARMUP]):
            for _, group in minute.groupby("pair"):
                for raw in group["raw"].tolist():
                    await client.on_message(raw, time.perf_counter())  # type: ignore[attr-defined]
                if i >= WARMUP:
                    await asyncio.sleep(STAGGER_S)
            await engine.drain()
            if i == 1:
                for vol in engine.desk.trader.vol.values():
                    vol.install(model, vol.total)
        await engine.close()
        engine.ledger.close()
        await timed.inner.aclose()
    waited = []
    for pair, calls in timed.calls.items():
        waited += [latency - call for call, latency in zip(calls, latencies[pair], strict=False)]
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--minutes", type=int, default=8, help="engine minutes per run (3 s each in the slow run)")
    args = parser.parse_args()
    context = context_us(args.rounds * 2)
    overhead = asyncio.run(step_overhead_ms(args.rounds))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        instant = asyncio.run(engine_run(0.0, args.minutes, Path(a)))
        slow = asyncio.run(engine_run(MODEL_DELAY_S, args.minutes, Path(b)))
    if not instant or not slow:
        raise SystemExit("no decision reached the approver: the benchmark measured nothing")
    base = statistics.median(instant)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}"
    )
    print(f"context build + serialise: p50 {context['p50_us']} us, p99 {context['p99_us']} us")
    print(
        "approval step minus server time (Claude, instant fake API):"
        f" p50 {overhead['p50_ms']} ms, p99 {overhead['p99_ms']} ms"
    )
    print(
        f"engine, 10 pairs {STAGGER_S:g} s apart, answers at once: {len(instant)} decisions: beyond their call"
        f" p50 {base * 1e3:.2f} ms, max {max(instant) * 1e3:.2f} ms"
    )
    print(
        f"engine, 10 pairs {STAGGER_S:g} s apart, every call {MODEL_DELAY_S:g} s: {len(slow)} decisions:"
        " beyond their own call"
        f" p50 {statistics.median(slow) * 1e3:.2f} ms, max {max(slow) * 1e3:.2f} ms"
    )
    figures = {
        "context_p99_us": context["p99_us"],
        "step_overhead_p99_ms": overhead["p99_ms"],
        "max_cross_pair_delay_ms": round((max(slow) - max(instant)) * 1e3, 3),
        "median_cross_pair_delay_ms": round((statistics.median(slow) - base) * 1e3, 3),
        "context_p50_us": context["p50_us"],
        "step_overhead_p50_ms": overhead["p50_ms"],
        "slow_decisions": len(slow),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
