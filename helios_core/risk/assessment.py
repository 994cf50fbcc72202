"""What the risk tiers concluded about one signal, kept for the ledger and the steps after them."""

from __future__ import annotations

from dataclasses import dataclass, field

from helios_core.risk.garch import VolModel
from helios_core.risk.sizing import Sizing


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """Tier 3's numbers for one signal: volatility, Kelly and every adjustment and cap."""

    direction: str  # BUY | SELL: the predicted direction
    probability: float  # the model's probability of that direction
    daily_vol: float
    vol_source: str  # GARCH | EWMA (the fallback) | NONE
    regime: str  # LOW | MEDIUM | HIGH | EXTREME
    omega: float | None
    alpha: float | None
    beta: float | None
    kelly_full: float
    kelly_fractional: float
    vol_adjusted: float
    drawdown_adjusted: float
    cap: float
    fraction: float  # of equity, committed as margin
    leverage: float
    stop_loss_pct: float
    take_profit_pct: float
    max_hold_s: float
    equity: float
    drawdown: float
    approved: bool
    reason: str

    @classmethod
    def of(
        cls,
        direction: str,
        probability: float,
        daily_vol: float,
        regime: str,
        model: VolModel | None,
        sizing: Sizing,
        equity: float,
        drawdown: float,
    ) -> RiskAssessment:
        return cls(
            direction=direction,
            probability=probability,
            daily_vol=daily_vol,
            vol_source=model.source if model is not None else "NONE",
            regime=regime,
            omega=model.omega if model is not None else None,
            alpha=model.alpha if model is not None else None,
            beta=model.beta if model is not None else None,
            kelly_full=sizing.kelly_full,
            kelly_fractional=sizing.kelly_fractional,
            vol_adjusted=sizing.vol_adjusted,
            drawdown_adjusted=sizing.drawdown_adjusted,
            cap=sizing.cap,
            fraction=sizing.fraction,
            leverage=sizing.leverage,
            stop_loss_pct=sizing.stop_loss_pct,
            take_profit_pct=sizing.take_profit_pct,
            max_hold_s=sizing.max_hold_s,
            equity=equity,
            drawdown=drawdown,
            approved=sizing.approved and sizing.fraction > 0,
            reason=sizing.reason,
        )


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """Tier 5's verdict on a proposed trade: every violated limit, and the figures it saw."""

    passed: bool
    violations: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
