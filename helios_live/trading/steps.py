"""The trading links of the decision chain: Tier 3 sizing, the Tier 5 portfolio guard and
execution. Each returns a verdict and leaves what it produced on the context."""

from __future__ import annotations

from dataclasses import replace

from helios_core.decision import Approved, Context, Denied, Verdict
from helios_core.risk.assessment import LimitCheck, RiskAssessment
from helios_core.risk.limits import Proposal, check
from helios_core.risk.sizing import size
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import PositionSide
from helios_live.ledger.records import DecisionRef
from helios_live.models.inference import LABELS
from helios_live.trading.desk import Desk


class Size:
    """GARCH volatility, its regime, and the Kelly fraction with every adjustment and cap."""

    name = "sizing"

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def __call__(self, context: Context) -> Verdict:
        trader = self.desk.trader
        vol = trader.vol[context.pair]
        account = trader.account
        prediction = context.prediction
        p = prediction.probabilities[LABELS.index(prediction.label)]  # of the direction it predicts
        daily_vol, regime = vol.daily_vol, vol.regime
        sizing = size(p, daily_vol, regime, account.drawdown, trader.config.sizing)
        context.sizing = sizing
        context.risk = RiskAssessment.of(
            prediction.label, p, daily_vol, regime, vol.model, sizing, account.equity, account.drawdown
        )
        if not context.risk.approved:
            return Denied(self.name, sizing.reason or "position size is zero")
        return Approved(
            self.name,
            f"{sizing.fraction:.2%} of equity at {sizing.leverage:.1f}x; daily vol {daily_vol:.2%} ({regime})",
        )


class Guard:
    """One position per pair, then every portfolio limit, checked against the account as it
    stands; all violations listed. A second entry on a pair is denied as that (`position_open`),
    not as a limit the pair would break against itself."""

    name = "portfolio"

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def __call__(self, context: Context) -> Verdict:
        sizing = context.sizing
        if sizing is None:
            return Denied(self.name, "no sizing to check")
        held = self.desk.holding(context.pair)
        if held is not None:
            reason = f"position_open: {context.pair} already has an open position (key {held})"
            context.check = LimitCheck(False, (reason,), {})
            return Denied(self.name, reason)
        trader = self.desk.trader
        sectors = trader.sectors
        proposal = Proposal(
            context.pair,
            sectors.get(context.pair, "crypto"),
            sizing.fraction * trader.account.equity,
            sizing.leverage,
        )
        view = trader.account.view(sectors)
        view = replace(view, open=view.open + self.desk.pending_exposures(sectors))
        violations, metrics = check(trader.config.limits, view, proposal, trader.correlation)
        context.check = LimitCheck(not violations, tuple(violations), metrics)
        if violations:
            return Denied(self.name, "; ".join(violations))
        return Approved(self.name, "all portfolio limits hold")


class Execute:
    """The order through the current mode's execution client; approved once it is placed."""

    name = "execution"
    deadline_s = None  # never cut short: an order half sent is worse than a slow one

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def __call__(self, context: Context) -> Verdict:
        sizing = context.sizing
        if sizing is None:
            return Denied(self.name, "no sizing to execute")
        side = PositionSide.LONG if context.prediction.label == "BUY" else PositionSide.SHORT
        result = await self.desk.open(
            context.key,
            context.pair,
            side,
            sizing.fraction * self.desk.account.equity,
            sizing.leverage,
            sizing.stop_loss_pct,
            sizing.take_profit_pct,
            context.now,
            DecisionRef(context.pair, as_datetime(context.candle_ts), context.model_version),
        )
        if isinstance(result, str):
            return Denied(self.name, result)
        if result is None:
            return Approved(self.name, f"{context.mode} {side} order placed; its fill is still to come")
        context.execution = result
        quantity, price = result.order.filled_quantity, result.order.average_price
        mode = str(context.mode).lower()
        return Approved(self.name, f"{mode} {side} {quantity:.8g} {context.pair} at {price:.8g}")
