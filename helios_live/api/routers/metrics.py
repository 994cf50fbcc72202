"""Prometheus exposition at /metrics; the engine's JSON metrics live at
/api/autonomous-engine/metrics (the design's path). Both read the same engine counters."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from helios_live.api.deps import LocalOrViewer
from helios_live.api.responses import AUTHENTICATION
from helios_live.data.analytics import Analytics, AnalyticsCache
from helios_live.kernel import status as report
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.stages import BUCKETS, Stages
from helios_live.surveillance.monitor import Surveillance

router = APIRouter(tags=["metrics"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EngineCollector(Collector):
    """Reads the engine's plain counters at scrape time: nothing is counted twice on the hot path."""

    def __init__(self, engine: Kernel) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        m = report.metrics(engine)
        up = GaugeMetricFamily("helios_engine_running", "1 while the engine runs")
        up.add_metric([], 1.0 if engine.status == "RUNNING" else 0.0)
        yield up
        flags = GaugeMetricFamily("helios_engine_flag", "engine switches", labels=["flag"])
        flags.add_metric(["auto_trading"], float(engine.auto_trading))
        flags.add_metric(["emergency_stop"], float(engine.emergency_stop))
        flags.add_metric(["model_loaded"], float(engine.predictor is not None))
        flags.add_metric(["stream_connected"], float(m["stream"]["connected"]))
        yield flags
        messages = CounterMetricFamily("helios_stream_messages", "messages parsed", labels=["outcome", "kind"])
        for outcome in ("accepted", "rejected"):
            for kind, n in m["messages"][outcome].items():
                messages.add_metric([outcome, kind], float(n))
        yield messages
        reconnects = CounterMetricFamily("helios_stream_disconnects", "stream connections lost")
        reconnects.add_metric([], float(m["stream"]["disconnects"]))
        yield reconnects
        per_pair = CounterMetricFamily("helios_pair_events", "per-pair counts", labels=["pair", "what"])
        age = GaugeMetricFamily("helios_last_candle_age_seconds", "age of the last closed candle", labels=["pair"])
        for pair, state in engine.states.items():
            per_pair.add_metric([pair, "candles"], float(state.candles))
            per_pair.add_metric([pair, "predictions"], float(state.predictions))
            per_pair.add_metric([pair, "late_trades"], float(state.builder.late))
            for what, n in report.guard_counts(state).items():
                if what != "holding":
                    per_pair.add_metric([pair, f"guard_{what}"], float(n))
            per_pair.add_metric([pair, "backfilled_candles"], float(state.backfilled))
            value = report.last_candle_age(engine, state)
            if value is not None:
                age.add_metric([pair], float(value))
        yield per_pair
        yield age
        verdicts = CounterMetricFamily("helios_decision_steps", "decision-chain verdicts", labels=["step", "verdict"])
        for key, n in m["verdicts"].items():
            step, verdict = key.split(":")
            verdicts.add_metric([step, verdict], float(n))
        yield verdicts
        yield histograms(
            engine.decision_latency,
            "helios_decision_latency_seconds",
            "closing message to stored prediction; decisions=catchup waited for their pair's catch-up",
            "decisions",
        )
        yield stage_histograms(engine.stages)
        yield from approval_metrics(report.approval_state(engine))
        if engine.surveillance is not None:
            yield from surveillance_metrics(engine.surveillance)
        errors = CounterMetricFamily("helios_engine_errors", "errors by kind", labels=["kind"])
        for kind, n in m["errors"].items():
            errors.add_metric([kind], float(n))
        yield errors


def surveillance_metrics(surveil: Surveillance) -> Iterator[Metric]:
    """The newest deviation and risk score per (venue, asset), and the active events by severity."""
    deviation = GaugeMetricFamily(
        "helios_surveillance_deviation_pct", "price against its reference, percent", labels=["venue", "asset"]
    )
    risk = GaugeMetricFamily("helios_surveillance_risk_score", "deviation risk score, 0-100", labels=["venue", "asset"])
    for (venue, asset), reading in sorted(surveil.latest.items()):
        if reading.valid:
            deviation.add_metric([venue, asset], reading.deviation_pct)
        risk.add_metric([venue, asset], reading.risk)
    yield deviation
    yield risk
    active = GaugeMetricFamily("helios_surveillance_active_events", "active security events", labels=["severity"])
    counts = Counter(str(e.severity) for e in surveil.book.active.values())
    for severity in ("MEDIUM", "HIGH", "CRITICAL"):
        active.add_metric([severity], float(counts[severity]))
    yield active
    problems = CounterMetricFamily("helios_surveillance_problems", "source errors, bad rows, timeouts", labels=["kind"])
    for kind, n in sorted(surveil.counts.items()):
        if not kind.endswith("_runs"):
            problems.add_metric([kind], float(n))
    yield problems


def approval_metrics(state: dict[str, Any] | None) -> Iterator[Metric]:
    """Tier 4: verdicts, failures, cost, today's spend and the circuit's state."""
    if state is None:
        return
    verdicts = CounterMetricFamily("helios_llm_verdicts", "Tier 4 verdicts as merged", labels=["verdict"])
    for verdict, n in state["verdicts"].items():
        verdicts.add_metric([verdict], float(n))
    yield verdicts
    failures = CounterMetricFamily("helios_llm_failures", "Tier 4 calls without a valid answer", labels=["kind"])
    for kind, n in state["failures"].items():
        failures.add_metric([kind], float(n))
    yield failures
    cost = CounterMetricFamily("helios_llm_cost_usd", "Tier 4 spend since the engine started (USD)")
    cost.add_metric([], float(state["cost_usd"]))
    yield cost
    if state["budget"] is not None:
        today = GaugeMetricFamily("helios_llm_spend_today_usd", "Tier 4 spend today, UTC (USD)")
        today.add_metric([], float(state["budget"]["spent_usd"]))
        yield today
    circuit = GaugeMetricFamily("helios_llm_circuit", "1 for the circuit breaker's current state", labels=["state"])
    for name in ("closed", "open", "half_open"):
        circuit.add_metric([name], 1.0 if state["circuit"]["state"] == name else 0.0)
    yield circuit


def stage_histograms(stages: Stages) -> HistogramMetricFamily:
    """Every stage's durations as one histogram family, labelled by stage."""
    return histograms(
        stages,
        "helios_stage_seconds",
        "wall time of each stage of a decision: features, inference, step_<name>, ledger_commit",
        "stage",
    )


def histograms(stages: Stages, name: str, documentation: str, label: str) -> HistogramMetricFamily:
    """One histogram family of `stages`, each labelled by its name under `label`."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    bounds = [str(b) for b in BUCKETS] + ["+Inf"]  # 1e-05 .. 10.0: what Prometheus's own client writes
    for stage, histogram in stages.snapshot().items():
        family.add_metric([stage], list(zip(bounds, histogram.buckets, strict=True)), histogram.sum)
    return family


# mart_performance's figures as gauges {ledger, period}: (column, name, help)
PERFORMANCE = (
    ("total_return", "helios_performance_return", "compounded return over the period, a fraction of equity"),
    ("sharpe", "helios_performance_sharpe", "annualised Sharpe ratio of the daily returns over the period"),
    ("sortino", "helios_performance_sortino", "annualised Sortino ratio of the daily returns over the period"),
    ("max_drawdown", "helios_performance_max_drawdown", "largest peak-to-trough fall of equity, a fraction"),
    ("var_95", "helios_performance_var_95", "one-day historical value at risk at 95%, a fraction of equity"),
    ("var_99", "helios_performance_var_99", "one-day historical value at risk at 99%, a fraction of equity"),
    ("win_rate", "helios_performance_win_rate", "closed trades that made money, a fraction"),
    ("profit_factor", "helios_performance_profit_factor", "gross profit over gross loss of the closed trades"),
)


class AnalyticsCollector(Collector):
    """The published marts (docs/live.md, Metrics), read at scrape time through the cache:
    a stat per mart, a read only when the analytics build published again."""

    def __init__(self, cache: AnalyticsCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        yield from analytics_metrics(self.cache.read())


def _number(value: Any) -> float | None:
    """A finite figure, or None (null in the mart): no NaN is exported."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def analytics_metrics(analytics: Analytics) -> Iterator[Metric]:
    """Every ledger's figures in mart_performance and mart_go_live; a null figure is left out."""
    built = GaugeMetricFamily(
        "helios_analytics_built_timestamp_seconds", "when the published analytics were built, Unix time"
    )
    if analytics.built_at is not None:
        built.add_metric([], analytics.built_at.timestamp())
    yield built
    rows = analytics.rows("mart_performance")
    for column, name, documentation in PERFORMANCE:
        family = GaugeMetricFamily(name, documentation, labels=["ledger", "period"])
        for row in rows:
            figure = _number(row.get(column))
            if figure is not None:
                family.add_metric([str(row["ledger"]), str(row["period"])], figure)
        yield family
    value = GaugeMetricFamily(
        "helios_go_live_value",
        "a go-live criterion's measured value (go_live: criteria passed)",
        labels=["ledger", "criterion"],
    )
    passed = GaugeMetricFamily(
        "helios_go_live_passed", "1 if the go-live criterion passed, 0 if not", labels=["ledger", "criterion"]
    )
    for row in analytics.rows("mart_go_live"):
        labels = [str(row["ledger"]), str(row["criterion"])]
        measured = _number(row.get("value"))
        if measured is not None:
            value.add_metric(labels, measured)
        if isinstance(row.get("passed"), bool):
            passed.add_metric(labels, float(row["passed"]))
    yield value
    yield passed


def registry_for(engine: Kernel, analytics: AnalyticsCache | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    if analytics is not None:
        registry.register(AnalyticsCollector(analytics))
    return registry


@router.get("/metrics", response_class=Response, dependencies=[LocalOrViewer], responses=AUTHENTICATION)
async def prometheus(request: Request) -> Response:
    """The engine's counters and stage histograms in Prometheus text format. Open to loopback
    clients without credentials (a local Prometheus); any other client needs a principal."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE)
