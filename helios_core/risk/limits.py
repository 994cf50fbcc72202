"""Tier 5 portfolio guard: the seven limits every new position must pass (design section 24).

Pure: the caller hands in the portfolio as it stands and a correlation lookup, and gets back
every violated limit (not just the first, so the ledger shows all of them) and the metrics it
computed. Each violation names its limit first ("max_drawdown: ..."), so callers can match on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Portfolio limits; the defaults are the design's. Fractions of equity, leverage in x."""

    max_drawdown: float = 0.15
    daily_loss: float = 0.05
    max_open_positions: int = 10
    max_position: float = 0.20
    max_sector_exposure: float = 0.60
    max_correlation: float = 0.90
    max_leverage: float = 3.0

    def __post_init__(self) -> None:
        for name in ("max_drawdown", "daily_loss", "max_position", "max_sector_exposure", "max_correlation"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be >= 1, got {self.max_open_positions}")
        if not 1.0 <= self.max_leverage < math.inf:
            raise ValueError(f"max_leverage must be >= 1, got {self.max_leverage}")


def _check_position(margin: float, leverage: float) -> None:
    if not 0.0 <= margin < math.inf:
        raise ValueError(f"margin must be >= 0 and finite, got {margin}")
    if not 1.0 <= leverage < math.inf:
        raise ValueError(f"leverage must be >= 1 and finite, got {leverage}")


@dataclass(frozen=True, slots=True)
class Exposure:
    """A position, open or proposed: `margin` is the quote currency committed, `notional` what it controls."""

    pair: str
    sector: str
    margin: float
    leverage: float

    def __post_init__(self) -> None:
        _check_position(self.margin, self.leverage)

    @property
    def notional(self) -> float:
        return self.margin * self.leverage


Proposal = Exposure  # a position about to be opened: the same figures as an open one


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """The portfolio as it stands, in quote currency: equity now, its peak, equity at the start
    of the trading day, and the open positions."""

    equity: float
    peak: float
    day_start_equity: float
    open: tuple[Exposure, ...] = ()

    @property
    def drawdown(self) -> float:
        """(peak - equity) / peak; 0 without a positive peak."""
        return (self.peak - self.equity) / self.peak if self.peak > 0.0 else 0.0

    @property
    def daily_return(self) -> float:
        """(equity - day start) / day start; 0 without a positive day start."""
        if not self.day_start_equity > 0.0:
            return 0.0
        return (self.equity - self.day_start_equity) / self.day_start_equity


def check(
    limits: Limits,
    view: PortfolioView,
    proposal: Proposal,
    correlation: Callable[[str, str], float | None],
) -> tuple[list[str], dict[str, float]]:
    """Every limit the proposal would violate (empty: pass) and the metrics behind them.

    Shares are of equity: the margin already in the proposal's pair (or sector) plus the
    proposal's. Leverage is all notional, the proposal's included, over equity. Correlation is
    checked against every open position of another pair (a pair is never compared with itself:
    a second entry on a pair is the caller's rule, `position_open`), `correlation(a, b)`
    returning None (or NaN) means unknown and is skipped; the highest one is reported.
    Non-positive equity is a violation of its own and leaves the share metrics NaN.
    """
    violations: list[str] = []
    equity = view.equity
    has_equity = equity > 0.0
    if not has_equity:
        violations.append(f"equity: {equity:.2f} <= 0")

    def share(amount: float) -> float:
        return amount / equity if has_equity else math.nan

    drawdown, daily_return, open_count = view.drawdown, view.daily_return, len(view.open)
    position_share = share(proposal.margin + sum(e.margin for e in view.open if e.pair == proposal.pair))
    sector_share = share(proposal.margin + sum(e.margin for e in view.open if e.sector == proposal.sector))
    portfolio_leverage = share(proposal.notional + sum(e.notional for e in view.open))
    max_corr, max_corr_pair = _max_correlation(proposal.pair, view.open, correlation)

    if drawdown >= limits.max_drawdown:
        violations.append(f"max_drawdown: drawdown {drawdown:.2%} >= {limits.max_drawdown:.2%}")
    if daily_return <= -limits.daily_loss:
        violations.append(f"daily_loss: today {daily_return:.2%} <= {-limits.daily_loss:.2%}")
    if open_count >= limits.max_open_positions:
        violations.append(f"max_open_positions: {open_count} open >= {limits.max_open_positions}")
    if position_share > limits.max_position:
        violations.append(
            f"max_position: {proposal.pair} would be {position_share:.2%} of equity > {limits.max_position:.2%}"
        )
    if sector_share > limits.max_sector_exposure:
        violations.append(
            f"max_sector_exposure: {proposal.sector} would be {sector_share:.2%} > {limits.max_sector_exposure:.2%}"
        )
    if max_corr > limits.max_correlation:
        violations.append(
            f"max_correlation: {proposal.pair} vs {max_corr_pair} {max_corr:.2f} > {limits.max_correlation:.2f}"
        )
    if portfolio_leverage > limits.max_leverage:
        violations.append(f"max_leverage: portfolio {portfolio_leverage:.2f}x > {limits.max_leverage:.2f}x")

    metrics = {
        "drawdown": drawdown,
        "daily_return": daily_return,
        "open_positions": float(open_count),
        "position_share": position_share,
        "sector_share": sector_share,
        "leverage": portfolio_leverage,
        "max_correlation": max_corr,
    }
    return violations, metrics


def _max_correlation(
    pair: str, open_positions: tuple[Exposure, ...], correlation: Callable[[str, str], float | None]
) -> tuple[float, str]:
    """Highest known correlation of `pair` with another open position's pair (NaN, "" if none)."""
    best, best_pair = math.nan, ""
    for other in dict.fromkeys(e.pair for e in open_positions if e.pair != pair):
        value = correlation(pair, other)
        if value is None or not math.isfinite(value):
            continue
        if not value <= best:  # also true while best is NaN
            best, best_pair = value, other
    return best, best_pair
