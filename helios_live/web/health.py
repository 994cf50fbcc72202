"""Each tier's health for the dashboard: healthy, degraded, critical or offline, with the reason.

Read from the engine as it stands (the same checks as `/health`, the approval's circuit, the
surveillance restrictions); nothing here changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from helios_live.approval.step import Approval
from helios_live.kernel import health
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.tiers import TIERS

HEALTHY, DEGRADED, CRITICAL, OFFLINE = "healthy", "degraded", "critical", "offline"


@dataclass(frozen=True)
class TierHealth:
    id: str
    name: str
    state: str
    why: str


def tiers(engine: Kernel) -> list[TierHealth]:
    checks = health.checks(engine)
    return [
        _tier("tier1", *_data(engine, checks)),
        _tier("tier2", *_model(engine, checks)),
        _tier("tier3", *_sizing(engine)),
        _tier("tier4", *_approval(engine)),
        _tier("tier5", *_portfolio(engine, checks)),
    ]


def _tier(tier: str, state: str, why: str) -> TierHealth:
    return TierHealth(tier, TIERS[tier].name, state, why)


def _data(engine: Kernel, checks: dict[str, str]) -> tuple[str, str]:
    if engine.status != "RUNNING":
        return OFFLINE, f"engine is {engine.status}"
    failing = [checks[k] for k in ("stream_alive", "stream_current", "candles_fresh") if checks[k]]
    return (DEGRADED, "; ".join(failing)) if failing else (HEALTHY, "stream live, candles fresh")


def _model(engine: Kernel, checks: dict[str, str]) -> tuple[str, str]:
    if not engine.tiers.on("tier2"):
        return OFFLINE, "switched off by the operator: no new entries"
    if checks["model_loaded"]:
        return CRITICAL, checks["model_loaded"]
    return HEALTHY, f"model {engine.model_version}"


def _sizing(engine: Kernel) -> tuple[str, str]:
    vol = engine.desk.trader.vol
    unfitted = sorted(pair for pair in engine.pairs if pair not in vol or vol[pair].model is None)
    if unfitted:
        return DEGRADED, f"no GARCH fit yet for {', '.join(unfitted)} (EWMA or no size)"
    return HEALTHY, "volatility fitted for every pair"


def _approval(engine: Kernel) -> tuple[str, str]:
    step = engine.approval
    if not engine.tiers.on("tier4"):
        return OFFLINE, "switched off by the operator: the failure policy decides"
    if not isinstance(step, Approval):
        return HEALTHY, f"approval by {step.name}"
    circuit = step.breaker.state
    if circuit == "open":
        return (
            CRITICAL,
            f"circuit open after {step.breaker.in_a_row} failures: the failure policy ({step.policy}) decides",
        )
    if circuit == "half_open":
        return DEGRADED, "circuit half open: the next call tries the approver again"
    return HEALTHY, f"{step.approver.name}, circuit closed"


def _portfolio(engine: Kernel, checks: dict[str, str]) -> tuple[str, str]:
    if engine.emergency_stop:
        return CRITICAL, "emergency stop active: entries blocked"
    halted = engine.halted()
    if halted:
        return CRITICAL, halted
    writes = checks["ledger_writes"] or checks["ledger_backlog"]
    if writes:
        return DEGRADED, writes
    if not engine.tiers.on("tier5"):
        return DEGRADED, "allocation switched off by the operator; the limits still apply"
    return HEALTHY, "limits in force"
