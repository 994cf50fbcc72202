"""The trading side of the engine: sizing inputs, the paper account, opening positions from
approved signals, and closing them on stop-loss, take-profit, liquidation, time-out, a manual
close or the emergency stop. Everything it does comes back as ledger records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import MappingProxyType

from helios_core.risk.limits import Limits
from helios_core.risk.sizing import SizingConfig
from helios_live.clock import as_datetime
from helios_live.ledger.records import FillRecord, OrderRecord, PositionRecord, SnapshotRecord, TradeRecord
from helios_live.settings import HeliosSettings
from helios_live.stream.events import Book
from helios_live.trading.account import Account, gross_pnl
from helios_live.trading.paper import Fill, PaperConfig, market_fill
from helios_live.trading.volatility import PairVolatility, correlation

KEYS = uuid.UUID("6f1c2e0a-57c4-4d6b-9a8e-2b7f0c3d9e11")  # namespace of position keys


@dataclass(frozen=True)
class TradingConfig:
    capital: float = 100_000.0
    garch_window: int = 30 * 288  # 30 days of 5m returns
    sizing: SizingConfig = field(default_factory=SizingConfig)
    limits: Limits = field(default_factory=Limits)
    paper: PaperConfig = field(default_factory=PaperConfig)
    sectors: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_settings(cls, s: HeliosSettings) -> TradingConfig:
        return cls(
            capital=s.trading_capital,
            garch_window=s.risk_garch_days * 288,
            sizing=SizingConfig(
                fractional_kelly=s.risk_fractional_kelly,
                reward_risk=s.risk_reward_ratio,
                min_confidence=s.live_min_confidence,
                max_position=s.risk_max_position,
                max_hold_s=s.risk_max_hold_s,
                max_leverage=s.risk_max_leverage,
            ),
            limits=Limits(
                max_drawdown=s.risk_max_drawdown,
                daily_loss=s.risk_daily_loss,
                max_open_positions=s.risk_max_open_positions,
                max_position=s.risk_max_position,
                max_sector_exposure=s.risk_max_sector_exposure,
                max_correlation=s.risk_max_correlation,
                max_leverage=s.risk_max_portfolio_leverage,
            ),
            paper=PaperConfig(
                taker_fee=s.paper_taker_fee,
                maker_fee=s.paper_maker_fee,
                slippage_bps=s.paper_slippage_bps,
                book_max_age_s=s.paper_book_max_age_s,
            ),
            sectors=MappingProxyType(dict(s.risk_sectors)),
        )


def position_key(pair: str, candle_ts: float, model_version: str) -> str:
    """The same decision always names the same position: a restart cannot open it twice."""
    return str(uuid.uuid5(KEYS, f"{pair}|{int(candle_ts)}|{model_version}"))


class Trader:
    def __init__(self, config: TradingConfig, pairs: tuple[str, ...], account: Account | None = None) -> None:
        self.config = config
        self.account = account or Account(config.capital)
        self.vol = {p: PairVolatility(config.garch_window) for p in pairs}
        self._correlations: dict[tuple[str, str], tuple[tuple[int, int], float | None]] = {}

    @property
    def sectors(self) -> dict[str, str]:
        return dict(self.config.sectors)

    def correlation(self, a: str, b: str) -> float | None:
        """Cached until either pair has a new return: the guard asks on every decision, against
        every open position, and a 30-day correlation only moves every five minutes."""
        if a == b:
            return 1.0
        if a not in self.vol or b not in self.vol:
            return None
        seen = (self.vol[a].total, self.vol[b].total)
        cached = self._correlations.get((a, b))
        if cached is None or cached[0] != seen:
            cached = (seen, correlation(self.vol[a], self.vol[b]))
            self._correlations[(a, b)] = cached
        return cached[1]

    # entries --------------------------------------------------------------------------------
    def open(
        self,
        key: str,
        pair: str,
        side: str,
        margin: float,
        leverage: float,
        stop_loss_pct: float,
        take_profit_pct: float,
        book: Book | None,
        now: float,
        mode: str,
    ) -> tuple[TradeRecord | None, str]:
        """Open a position committing about `margin` of cash; (trade, "") or (None, why not)."""
        last = self.account.marks.get(pair, float("nan"))
        reference = _mid(book, now, self.config.paper) or last
        if not reference > 0:
            return None, f"no price for {pair}"
        quantity = margin * leverage / reference
        order_side = "BUY" if side == "LONG" else "SELL"
        fill = market_fill(order_side, quantity, book, last, now, self.config.paper)
        committed = fill.notional / leverage
        if not self.account.can_open(committed, fill.fee):
            need = committed + fill.fee
            return None, f"insufficient cash: needs {need:.2f}, holds {self.account.cash:.2f}"
        sl, tp = stop_loss_pct, take_profit_pct
        long = side == "LONG"
        position = PositionRecord(
            key=key,
            pair=pair,
            side=side,
            status="OPEN",
            quantity=fill.quantity,
            entry_price=fill.price,
            margin=committed,
            leverage=leverage,
            stop_loss_price=fill.price * (1 - sl if long else 1 + sl),
            take_profit_price=fill.price * (1 + tp if long else 1 - tp),
            opened_at=as_datetime(now),
            deadline=as_datetime(now + self.config.sizing.max_hold_s),
            entry_fee=fill.fee,
        )
        self.account.open(position)
        return _trade(f"{key}-O", position, order_side, "OPEN", mode, fill, now), ""

    # exits ----------------------------------------------------------------------------------
    def exits(self, pair: str, price: float, now: float, book: Book | None, mode: str) -> list[TradeRecord]:
        """A new price (or a tick of the clock) for `pair`: close whatever it triggers.

        A position is judged only on prices after it opened, and history from before all of the
        pair's positions (a restart's warm-up replays days of it) moves nothing at all."""
        held = [p for p in self.account.positions.values() if p.pair == pair]
        live = [p for p in held if p.opened_at.timestamp() <= now]
        if held and not live:
            return []
        if price > 0:
            self.account.mark(pair, price, now)
        else:
            price = self.account.marks.get(pair, 0.0)
        trades = []
        for position in live:
            reason = self.exit_reason(position, price, now)
            if reason is not None:
                trades.append(self.close(position.key, reason, now, book, mode))
        return trades

    def exit_reason(self, position: PositionRecord, price: float, now: float) -> str | None:
        if price > 0:
            long = position.side == "LONG"
            if price <= position.stop_loss_price if long else price >= position.stop_loss_price:
                return "STOP_LOSS"
            if price >= position.take_profit_price if long else price <= position.take_profit_price:
                return "TAKE_PROFIT"
            fee = price * position.quantity * self.config.paper.taker_fee
            if position.margin + gross_pnl(position, price) - fee <= 0:
                return "LIQUIDATION"
        if now >= position.deadline.timestamp():
            return "TIMEOUT"
        return None

    def close(self, key: str, reason: str, now: float, book: Book | None, mode: str) -> TradeRecord:
        position = self.account.positions[key]
        side = "SELL" if position.side == "LONG" else "BUY"
        last = self.account.marks.get(position.pair, position.entry_price)
        fill = market_fill(side, position.quantity, book, last, now, self.config.paper)
        closed = self.account.close(key, fill.price, fill.fee, reason, as_datetime(now))
        return _trade(f"{key}-C", closed, side, "CLOSE", mode, fill, now)

    def snapshot(self, now: float, reason: str) -> SnapshotRecord:
        return self.account.snapshot(now, reason)


def _mid(book: Book | None, now: float, config: PaperConfig) -> float | None:
    if book is None or not book.bids or not book.asks:
        return None
    if book.ts is not None and now - book.ts > config.book_max_age_s:
        return None
    return (book.bids[0][0] + book.asks[0][0]) / 2


def _trade(
    client_order_id: str, position: PositionRecord, side: str, purpose: str, mode: str, fill: Fill, now: float
) -> TradeRecord:
    at = as_datetime(now)
    order = OrderRecord(
        client_order_id=client_order_id,
        position_key=position.key,
        pair=position.pair,
        side=side,
        purpose=purpose,
        mode=mode,
        quantity=fill.quantity,
        status="FILLED",
        reason=position.close_reason or "",
        created_at=at,
    )
    record = FillRecord(
        client_order_id=client_order_id,
        price=fill.price,
        quantity=fill.quantity,
        fee=fill.fee,
        liquidity=fill.liquidity,
        source=fill.source,
        levels=fill.levels,
        filled_at=at,
    )
    return TradeRecord(order, record, position)
