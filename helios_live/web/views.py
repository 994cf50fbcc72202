"""What each dashboard page shows, read from the engine, the ledger, the registry and the published
analytics: plain dicts for the templates. Ledger reads run off the event loop."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from helios_core.timeframes import as_datetime
from helios_core.trading.position import gross_pnl
from helios_live.data.analytics import Analytics
from helios_live.kernel.kernel import Kernel
from helios_live.models.registry import WALK_FORWARD, Registry, RegistryError
from helios_live.web import health

RECENT = 50
# The step a decision ended at, by tier (dbt_project/seeds/decision_tiers.csv says the same).
TIER_OF = {
    "prediction": "tier2",
    "signal": "tier2",
    "gate": "engine switches",
    "sizing": "tier3",
    "approval": "tier4",
    "surveillance": "tier5",
    "allocation": "tier5",
    "portfolio": "tier5",
    "execution": "execution",
}
FUNNEL_DECISIONS = 1000
CALIBRATION_BUCKETS = 5


def events(engine: Kernel) -> list[dict[str, Any]]:
    """The latest engine events but the periodic health reports, which would crowd out the rest."""
    page = engine.ledger.events(limit=200)
    return [e for e in page.items if e["kind"] != "HEALTH"][:15]


def alerts(engine: Kernel) -> list[dict[str, Any]]:
    """The latest alert deliveries (docs/alerts.md)."""
    return list(engine.ledger.alert_deliveries(limit=10).items)


def overview(engine: Kernel, analytics: Analytics) -> dict[str, Any]:
    figures = engine.desk.account.figures()
    capital = engine.desk.config.capital
    thirty = next((r for r in analytics.rows("mart_performance", "live") if r.get("period") == "30d"), None)
    return {
        "status": engine.status,
        "mode": str(engine.mode),
        "auto_trading": engine.auto_trading,
        "emergency_stop": engine.emergency_stop,
        "halted": engine.halted(),
        "pairs": list(engine.pairs),
        "model_version": engine.model_version,
        "equity": figures["equity"],
        "daily_pnl": figures["daily_pnl"],
        "total_pnl": figures["equity"] - capital,
        "drawdown": figures["drawdown"],
        "open_positions": figures["open_positions"],
        "sharpe_30d": _finite(thirty.get("sharpe")) if thirty else None,
        "analytics_built_at": analytics.built_at,
        "tiers": health.tiers(engine),
        "switches": engine.tiers.state(),
    }


async def positions(engine: Kernel) -> list[dict[str, Any]]:
    """The latest positions; an open one with its mark and unrealised P&L, as GET /api/positions."""
    page = await asyncio.to_thread(engine.ledger.positions, limit=RECENT)
    account = engine.desk.account
    out = []
    for item in page.items:
        live = account.positions.get(item["key"])
        mark = account.marks.get(live.pair, live.entry_price) if live is not None else None
        unrealised = gross_pnl(live, mark) if live is not None and mark is not None else None
        out.append({**item, "open": live is not None, "mark": mark, "unrealised_pnl": unrealised})
    return out


async def decisions(engine: Kernel) -> dict[str, Any]:
    """The funnel (where each of the latest decisions ended, by tier) and the latest ones whole."""
    page = await asyncio.to_thread(engine.ledger.predictions, limit=FUNNEL_DECISIONS)
    ended: Counter[tuple[str, str]] = Counter()
    for item in page.items:
        last = item["steps"][-1] if item["steps"] else {"step": "prediction", "approved": True}
        ended[(last["step"], "passed" if last["approved"] else "denied")] += 1
    llm = await asyncio.to_thread(engine.ledger.llm_decisions, limit=RECENT)
    by_prediction = {d.get("prediction_id"): d for d in llm.items}
    recent = [{**item, "approval": by_prediction.get(item["id"])} for item in page.items[:RECENT]]
    funnel = [
        {"tier": TIER_OF.get(step, ""), "step": step, "outcome": outcome, "count": n}
        for (step, outcome), n in ended.most_common()
    ]
    return {"funnel": funnel, "recent": recent, "counted": len(page.items)}


async def predictions(engine: Kernel) -> dict[str, Any]:
    """The latest predictions with their outcomes, and calibration over the scored ones: in each
    confidence bucket, how often the predicted class was right."""
    page = await asyncio.to_thread(engine.ledger.predictions, limit=FUNNEL_DECISIONS)
    scored = [p for p in page.items if p.get("correct") is not None]
    counts, right = [0] * CALIBRATION_BUCKETS, [0] * CALIBRATION_BUCKETS
    for p in scored:
        bucket = min(int(p["confidence"] * CALIBRATION_BUCKETS), CALIBRATION_BUCKETS - 1)
        counts[bucket] += 1
        right[bucket] += bool(p["correct"])
    buckets = [
        {
            "low": i / CALIBRATION_BUCKETS,
            "high": (i + 1) / CALIBRATION_BUCKETS,
            "count": counts[i],
            "hit_rate": right[i] / counts[i] if counts[i] else None,
        }
        for i in range(CALIBRATION_BUCKETS)
    ]
    return {"recent": page.items[:RECENT], "scored": len(scored), "calibration": buckets}


async def surveillance(engine: Kernel) -> list[dict[str, Any]]:
    page = await asyncio.to_thread(engine.ledger.security_events, limit=RECENT)
    return list(page.items)


def models(registry: Registry) -> dict[str, Any]:
    """Every bundle, newest first, with its test figures, checks and the gate's latest word on it."""
    active = registry.active()
    history = registry.history()
    verdicts = {e["version"]: e for e in history if e["action"] in ("promote", "reject", "refused")}
    rows: list[dict[str, Any]] = []
    folds = 0
    for version in reversed(registry.versions()):
        try:
            meta = registry.get(version).meta
        except RegistryError as exc:
            rows.append({"version": version, "error": str(exc)})
            continue
        if meta.get("role") == WALK_FORWARD:
            folds += 1  # evidence for a candidate, never promoted: counted, not listed
            continue
        test = meta.get("metrics", {}).get("test", {}).get("model", {})
        rows.append(
            {
                "version": version,
                "active": version == active,
                "role": meta.get("role"),
                "preset": meta.get("preset"),
                "created_at": meta.get("created_at"),
                "balanced_accuracy": test.get("balanced_accuracy"),
                "checks": meta.get("checks", {}),
                "gate": verdicts.get(version),
                "training": meta.get("training"),
            }
        )
    return {"active": active, "models": rows, "folds": folds, "history": list(reversed(history))[:RECENT]}


def backtests(home: Path) -> list[dict[str, Any]]:
    """Every backtest report under $HELIOS_HOME/backtests, newest first, with its headline figures."""
    root = home / "backtests"
    out = []
    for report in sorted(root.glob("**/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:RECENT]:
        try:
            figures = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        summary = figures.get("summary", figures) if isinstance(figures, dict) else {}
        out.append(
            {
                "run": report.parent.relative_to(root).as_posix(),
                "html": (report.parent / "report.html").exists(),
                "written": as_datetime(report.stat().st_mtime),
                "figures": {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)},
            }
        )
    return out


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
