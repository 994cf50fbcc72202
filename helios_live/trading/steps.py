"""The trading links of the decision chain: Tier 3 sizing, the Tier 5 portfolio guard and
execution. Each returns a verdict and leaves what it produced on the context."""

from __future__ import annotations

from helios_core.decision import Approved, Denied, Verdict
from helios_core.risk.limits import Proposal, check
from helios_core.risk.sizing import size
from helios_live.engine.chain import Context
from helios_live.inference import LABELS
from helios_live.ledger.records import CheckRecord, RiskRecord
from helios_live.trading.trader import Trader


class Size:
    """GARCH volatility, its regime, and the Kelly fraction with every adjustment and cap."""

    name = "sizing"

    def __init__(self, trader: Trader) -> None:
        self.trader = trader

    def __call__(self, context: Context) -> Verdict:
        vol = self.trader.vol[context.pair]
        account = self.trader.account
        prediction = context.prediction
        p = prediction.probabilities[LABELS.index(prediction.label)]  # of the direction it predicts
        daily_vol, regime, model = vol.daily_vol, vol.regime, vol.model
        sizing = size(p, daily_vol, regime, account.drawdown, self.trader.config.sizing)
        context.sizing = sizing
        context.risk = RiskRecord(
            direction=context.prediction.label,
            probability=p,
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
            equity=account.equity,
            drawdown=account.drawdown,
            approved=sizing.approved and sizing.fraction > 0,
            reason=sizing.reason,
        )
        if not context.risk.approved:
            return Denied(self.name, sizing.reason or "position size is zero")
        return Approved(
            self.name,
            f"{sizing.fraction:.2%} of equity at {sizing.leverage:.1f}x; daily vol {daily_vol:.2%} ({regime})",
        )


class Guard:
    """Every portfolio limit, checked against the account as it stands; all violations listed."""

    name = "portfolio"

    def __init__(self, trader: Trader) -> None:
        self.trader = trader

    def __call__(self, context: Context) -> Verdict:
        sizing = context.sizing
        if sizing is None:
            return Denied(self.name, "no sizing to check")
        trader = self.trader
        sectors = trader.sectors
        proposal = Proposal(
            context.pair,
            sectors.get(context.pair, "crypto"),
            sizing.fraction * trader.account.equity,
            sizing.leverage,
        )
        violations, metrics = check(trader.config.limits, trader.account.view(sectors), proposal, trader.correlation)
        context.check = CheckRecord(not violations, tuple(violations), metrics)
        if violations:
            return Denied(self.name, "; ".join(violations))
        return Approved(self.name, "all portfolio limits hold")


class Execute:
    """Paper fills now; LIVE refuses until live order placement exists."""

    name = "execution"

    def __init__(self, trader: Trader) -> None:
        self.trader = trader

    def __call__(self, context: Context) -> Verdict:
        if context.mode != "PAPER":
            return Denied(self.name, "LIVE order placement is not implemented yet: switch to PAPER to trade")
        sizing = context.sizing
        if sizing is None:
            return Denied(self.name, "no sizing to execute")
        side = "LONG" if context.prediction.label == "BUY" else "SHORT"
        trade, why = self.trader.open(
            context.key,
            context.pair,
            side,
            sizing.fraction * self.trader.account.equity,
            sizing.leverage,
            sizing.stop_loss_pct,
            sizing.take_profit_pct,
            context.book,
            context.now,
            context.mode,
        )
        if trade is None:
            return Denied(self.name, why)
        context.trade = trade
        fill = trade.fill
        assert fill is not None  # noqa: S101 -- an opened trade always has its fill
        return Approved(self.name, f"paper {side} {fill.quantity:.8g} {context.pair} at {fill.price:.8g}")
