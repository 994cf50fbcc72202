"""The trading records the engine hands the ledger: sizing, portfolio checks, orders, fills,
positions, portfolio snapshots and mode changes.

Money is in the pair's quote currency (ZAR for BTCZAR); quantities in its base currency.
A position is identified by `key`, which the engine derives from the decision that opened it,
so a restart that meets the same decision again cannot open it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from helios_live.ledger.models import require_aware

SIDES = frozenset({"BUY", "SELL"})
POSITION_SIDES = frozenset({"LONG", "SHORT"})
CLOSE_REASONS = frozenset({"STOP_LOSS", "TAKE_PROFIT", "TIMEOUT", "MANUAL", "EMERGENCY", "LIQUIDATION"})
MODES = frozenset({"PAPER", "LIVE"})


@dataclass(frozen=True, slots=True)
class RiskRecord:
    """Tier 3's numbers for one signal: volatility, Kelly and every adjustment and cap."""

    direction: str  # BUY | SELL: the predicted direction
    probability: float  # the model's probability of that direction
    daily_vol: float
    vol_source: str  # GARCH | EWMA (the fallback)
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


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """Tier 5's verdict on a proposed trade: every violated limit, and the figures it saw."""

    passed: bool
    violations: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    client_order_id: str
    position_key: str
    pair: str
    side: str  # BUY | SELL
    purpose: str  # OPEN | CLOSE
    mode: str  # PAPER | LIVE
    quantity: float  # requested, base currency
    status: str  # FILLED | REJECTED
    reason: str
    created_at: datetime

    def __post_init__(self) -> None:
        require_aware("created_at", self.created_at)
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {sorted(SIDES)}, got {self.side!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")


@dataclass(frozen=True, slots=True)
class FillRecord:
    client_order_id: str
    price: float  # volume-weighted over the levels walked
    quantity: float
    fee: float  # quote currency
    liquidity: str  # TAKER | MAKER
    source: str  # BOOK (walked the order book) | LAST (last price plus the slippage model)
    levels: int
    filled_at: datetime

    def __post_init__(self) -> None:
        require_aware("filled_at", self.filled_at)


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position's whole state after a change; the ledger inserts it on OPEN, updates it on CLOSE."""

    key: str
    pair: str
    side: str  # LONG | SHORT
    status: str  # OPEN | CLOSED
    quantity: float
    entry_price: float
    margin: float  # quote currency committed
    leverage: float
    stop_loss_price: float
    take_profit_price: float
    opened_at: datetime
    deadline: datetime
    entry_fee: float
    exit_price: float | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    exit_fee: float = 0.0
    realised_pnl: float | None = None  # net of both fees

    def __post_init__(self) -> None:
        require_aware("opened_at", self.opened_at)
        require_aware("deadline", self.deadline)
        if self.closed_at is not None:
            require_aware("closed_at", self.closed_at)
        if self.side not in POSITION_SIDES:
            raise ValueError(f"side must be one of {sorted(POSITION_SIDES)}, got {self.side!r}")
        if self.close_reason is not None and self.close_reason not in CLOSE_REASONS:
            raise ValueError(f"close_reason must be one of {sorted(CLOSE_REASONS)}, got {self.close_reason!r}")


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One order with its fill (None when rejected) and the position as it stands after it."""

    order: OrderRecord
    fill: FillRecord | None
    position: PositionRecord


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    at: datetime
    cash: float
    margin: float
    unrealised: float
    equity: float
    peak: float
    drawdown: float
    day_start_equity: float
    daily_pnl: float
    open_positions: int
    reason: str  # FILL | CANDLE | START

    def __post_init__(self) -> None:
        require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class ModeRecord:
    mode: str
    previous: str
    reason: str
    at: datetime

    def __post_init__(self) -> None:
        require_aware("at", self.at)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")
