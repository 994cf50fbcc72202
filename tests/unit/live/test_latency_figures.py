"""Honest figures: a decision whose closing message waited for its pair's catch-up is counted
apart from the live ones; every stage of a decision is a Prometheus histogram; a replay (no
receive times) measures nothing and reads no clock."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from helios_core.market import Bucket
from helios_live.api.routers.metrics import registry_for
from helios_live.demo import denial_kind, latency_lines
from helios_live.kernel import status as report
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.stages import BUCKETS, Stages
from tests.live_support import trading_kernel

STEPS = ("step_signal", "step_gate", "step_sizing", "step_approval", "step_portfolio", "step_execution")


async def _feed(kernel: Kernel, events: list[Bucket], received: float | None = None, *, now: bool = True) -> None:
    for event in events:
        await kernel.on_event(event, time.perf_counter() if now else received)
    await kernel.drain()


def _run(tmp_path: Path) -> Kernel:
    """Start (a warm-up from the lake), then: the first buckets are buffered until the cut and
    replayed (catch-up), one message received before the catch-up ended is handled after it
    (as one queued behind it would be), and the rest arrive live."""
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await kernel.start(connect=False)
        await kernel.set_auto_trading(True)
        before = time.perf_counter()
        await _feed(kernel, live[:3])
        assert kernel.states["BTCPERP"].catchup is None  # caught up
        await _feed(kernel, live[3:4], before, now=False)
        await _feed(kernel, live[4:30])
        await kernel.close()

    asyncio.run(run())
    return kernel


def test_catch_up_decisions_are_kept_apart_from_live_ones(tmp_path: Path) -> None:
    kernel = _run(tmp_path)

    live, catchup = kernel.measured["live"], kernel.measured["catchup"]
    assert catchup >= 2, "the buffered buckets and the one received before the catch-up ended"
    assert live >= 20 and live + catchup == kernel.states["BTCPERP"].predictions
    assert len(kernel.latencies) == live and len(kernel.catchup_latencies) == catchup
    # The message received before the catch-up waited for all of it: it is not a live figure.
    assert max(kernel.catchup_latencies) > max(kernel.latencies)
    assert len(kernel.desk.fill_latencies) <= live

    metrics = report.metrics(kernel)
    assert metrics["decision_latency_ms"]["decisions"] == live
    assert metrics["decision_latency_ms"]["samples"] == live
    assert metrics["catchup_latency_ms"]["decisions"] == catchup
    assert metrics["catchup_latency_ms"]["p99"] >= metrics["catchup_latency_ms"]["p50"] > 0


def test_every_stage_of_a_measured_decision_is_a_prometheus_histogram(tmp_path: Path) -> None:
    kernel = _run(tmp_path)
    committed = kernel.stages.snapshot().get("ledger_commit")  # the ledger writer's own stage, from its thread
    kernel.stages.observe("ledger_commit", 0.003)

    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry_for(kernel)).decode())}

    stage = families["helios_stage_seconds"]
    assert stage.type == "histogram"
    counts = {s.labels["stage"]: s.value for s in stage.samples if s.name == "helios_stage_seconds_count"}
    decisions = kernel.measured["live"] + kernel.measured["catchup"]
    assert counts["inference"] == decisions and counts["step_signal"] == decisions
    assert counts["features"] >= decisions  # every candle closed by a message, decided or not
    assert set(STEPS) <= set(counts)  # it trades: every step ran
    assert counts["ledger_commit"] == (committed.count if committed is not None else 0) + 1
    assert counts["step_execution"] <= counts["step_portfolio"] <= counts["step_signal"]
    buckets = [s for s in stage.samples if s.name == "helios_stage_seconds_bucket" and s.labels["stage"] == "features"]
    assert [s.labels["le"] for s in buckets][-1] == "+Inf" and len(buckets) == len(BUCKETS) + 1
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)  # cumulative
    assert buckets[-1].value == counts["features"]

    latency = families["helios_decision_latency_seconds"]
    assert latency.type == "histogram"
    measured = {s.labels["decisions"]: s.value for s in latency.samples if s.name.endswith("_count")}
    assert measured == {"live": kernel.measured["live"], "catchup": kernel.measured["catchup"]}


def test_the_metrics_pass_promtool(tmp_path: Path) -> None:
    """Prometheus's own linter accepts the exposition (names, units, histogram shape)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not installed (Debian's prometheus package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: it must be there)")
        pytest.skip(message)
    exposition = generate_latest(registry_for(_run(tmp_path)))
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, check=False)  # noqa: S603
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_events_without_a_receive_time_measure_nothing(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await kernel.start(connect=False)
        await kernel.set_auto_trading(True)
        await _feed(kernel, live[:20], None, now=False)
        await kernel.close()

    asyncio.run(run())

    assert kernel.states["BTCPERP"].predictions > 0
    assert kernel.stages.snapshot() == {} and not kernel.measured and not kernel.latencies


def test_a_stage_histogram_counts_each_duration_once_from_any_thread() -> None:
    stages = Stages()

    def observe() -> None:
        for i in range(5_000):
            stages.observe("ledger_commit", (i % 7) * 1e-4)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stages.observe("features", 0.0)
    stages.observe("features", 1e-5)  # on a bound: counted in it (Prometheus's le)
    stages.observe("features", 60.0)  # past the last bound: +Inf only

    snapshot = stages.snapshot()
    commits = snapshot["ledger_commit"]
    assert commits.count == 20_000 and commits.buckets[-1] == 20_000
    features = snapshot["features"]
    assert features.buckets[0] == 2 and features.buckets[-2] == 2 and features.count == 3
    assert features.sum == 60.00001


def test_the_demo_prints_the_live_figure_and_the_catch_up_apart() -> None:
    metrics = {
        "decision_latency_ms": {"decisions": 230, "samples": 230, "p50": 11.94, "p99": 40.12},
        "catchup_latency_ms": {"decisions": 1, "samples": 1, "p50": 5037.2, "p99": 5037.2},
    }

    lines = latency_lines(metrics)

    assert lines[0] == (
        "  latency of live decisions, closing message -> stored prediction: p50 11.9 ms, p99 40.1 ms over 230 decisions"
    )
    assert lines[1].startswith("  not counted in it: 1 decision on candles whose messages arrived while the engine")
    assert "p99 5037 ms, that wait included" in lines[1]
    none = {"decisions": 0, "samples": 0, "p50": None, "p99": None}
    assert latency_lines({"decision_latency_ms": none, "catchup_latency_ms": none})[1] == (
        "  no decision waited for a catch-up"
    )


def test_the_demo_counts_open_position_denials_as_one_reason_whatever_the_key() -> None:
    kinds = {
        denial_kind("portfolio", f"position_open: BTCPERP already has an open position (key {key})")
        for key in ("64f9a01b-13a2-57db-a33c-585e213d3a67", "0a1b2c3d-0000-5000-8000-000000000001")
    }
    assert kinds == {"portfolio: position_open: BTCPERP already has an open position"}
    assert denial_kind("signal", "confidence 0.412 below 0.55") == "signal: confidence # below #"
