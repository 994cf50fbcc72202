"""Ledger test helpers: prediction and trading records, the migrated-schema comparison, a
throw-away PostgreSQL database."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg2
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from helios_core.risk.assessment import LimitCheck, RiskAssessment
from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import (
    CloseReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    PositionSide,
    PositionStatus,
    TradingMode,
)
from helios_core.trading.orders import Fill, Order, OrderIntent
from helios_core.trading.position import Execution, Position
from helios_live.ledger import ModeRecord, PredictionRecord, StepRecord
from helios_live.ledger.models import Base

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
FEE = 0.001  # of the notional, both ways


def record(
    pair: str = "BTCZAR", hour: int = 0, model: str = "m1", label: str = "BUY", steps: tuple[StepRecord, ...] = ()
) -> PredictionRecord:
    candle = T0 + hour * HOUR
    return PredictionRecord(
        pair=pair,
        candle_ts=candle,
        decided_at=candle + HOUR,
        model_version=model,
        feature_set_version="1.0.0",
        feature_hash="ab" * 32,
        prediction=label,
        p_buy=0.6,
        p_sell=0.3,
        p_hold=0.1,
        confidence=0.6,
        entry_price=100.0 + hour,
        outcome_due=candle + 5 * HOUR,
        steps=steps,
    )


def risk(approved: bool = True, daily_vol: float = 0.02) -> RiskAssessment:
    return RiskAssessment(
        direction="BUY",
        probability=0.6,
        daily_vol=daily_vol,
        vol_source="GARCH",
        regime="MEDIUM",
        omega=1e-6,
        alpha=0.05,
        beta=0.9,
        kelly_full=0.2,
        kelly_fractional=0.05,
        vol_adjusted=0.04,
        drawdown_adjusted=0.04,
        cap=0.1,
        fraction=0.04 if approved else 0.0,
        leverage=2.0,
        stop_loss_pct=0.03,
        take_profit_pct=0.06,
        max_hold_s=3600.0,
        equity=10_000.0,
        drawdown=0.0,
        approved=approved,
        reason="" if approved else "confidence 0.400 below 0.55",
    )


def check(passed: bool = True) -> LimitCheck:
    violations = () if passed else ("max_open_positions: 3 open >= 3", "max_leverage: portfolio 3.10x > 3.00x")
    return LimitCheck(passed, violations, {"drawdown": 0.0, "open_positions": 3.0, "leverage": 1.5})


def opening(key: str, pair: str = "BTCZAR", at: datetime = T0, price: float = 100.0) -> Execution:
    """An opening order filled at `price`: a LONG of 4 units on 200 of margin."""
    position = Position(
        key=key,
        pair=pair,
        side=PositionSide.LONG,
        status=PositionStatus.OPEN,
        quantity=4.0,
        entry_price=price,
        margin=200.0,
        leverage=2.0,
        stop_loss_price=price * 0.97,
        take_profit_price=price * 1.06,
        opened_at=at,
        deadline=at + HOUR,
        entry_fee=FEE * price * 4.0,
    )
    return _execution(f"{key}-O", position, OrderSide.BUY, OrderPurpose.OPEN, price)


def closing(opened: Execution, price: float = 110.0, after: timedelta = 10 * MINUTE) -> Execution:
    """The opening's position sold at `price`, `after` its open."""
    position = opened.position
    fee = FEE * price * position.quantity
    closed = replace(
        position,
        status=PositionStatus.CLOSED,
        exit_price=price,
        closed_at=position.opened_at + after,
        close_reason=CloseReason.TAKE_PROFIT,
        exit_fee=fee,
        realised_pnl=(price - position.entry_price) * position.quantity - position.entry_fee - fee,
    )
    return _execution(f"{position.key}-C", closed, OrderSide.SELL, OrderPurpose.CLOSE, price)


def _execution(
    client_order_id: str, position: Position, side: OrderSide, purpose: OrderPurpose, price: float
) -> Execution:
    at = position.closed_at or position.opened_at
    intent = OrderIntent(
        client_order_id=client_order_id,
        position_key=position.key,
        pair=position.pair,
        side=side,
        purpose=purpose,
        quantity=position.quantity,
        mode=TradingMode.PAPER,
        created_at=at,
        leverage=position.leverage,
        reason=position.close_reason or "",
    )
    fee = FEE * price * position.quantity
    fill = Fill(client_order_id, price, position.quantity, fee, "TAKER", "BOOK", 2, at)
    return Execution(Order(intent, OrderStatus.FILLED, (fill,)), position)


def traded(pair: str = "BTCZAR", hour: int = 0, key: str | None = None) -> PredictionRecord:
    """A prediction that was sized, passed the portfolio check and opened position `key`
    (by default one named after its pair and hour)."""
    base = record(pair=pair, hour=hour)
    execution = opening(key or f"{pair}-{hour}", pair, base.decided_at, base.entry_price)
    return replace(base, risk=risk(), check=check(), execution=execution)


def snapshot(at: datetime, equity: float = 10_000.0, reason: str = "FILL") -> PortfolioSnapshot:
    return PortfolioSnapshot(
        at=at,
        cash=equity - 200.0,
        margin=200.0,
        unrealised=0.0,
        equity=equity,
        peak=equity,
        drawdown=0.0,
        day_start_equity=10_000.0,
        daily_pnl=equity - 10_000.0,
        open_positions=1,
        reason=reason,
    )


def mode(to: str, at: datetime, previous: str = "PAPER") -> ModeRecord:
    return ModeRecord(mode=TradingMode(to), previous=TradingMode(previous), reason="operator", at=at)


def schema_differences(url: str) -> list[object]:
    """What `alembic upgrade head` built that the models do not say, and the reverse."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def _on_server(url: str, database: str) -> URL:
    # psycopg2 reads libpq URIs, which know no SQLAlchemy driver suffix.
    return make_url(url).set(drivername="postgresql", database=database)


@contextmanager
def temporary_database(server_url: str, prefix: str = "helios_test") -> Iterator[str]:
    """A new, uniquely named database on the server of `server_url`, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_on_server(server_url, "postgres").render_as_string(hide_password=False))
    admin.autocommit = True  # CREATE / DROP DATABASE cannot run inside a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        try:
            yield _on_server(server_url, name).render_as_string(hide_password=False)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


class Proxy:
    """Forwards 127.0.0.1:<port> to the database; `cut()` drops every connection and refuses
    new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()  # refused: the database is "down"
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, server in pairs:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def restore(self) -> None:
        self.up = True
