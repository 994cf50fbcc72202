"""The backtester's fill model and determinism: orders fill at the next candle's open, never at
the close that made the signal; stops and targets inside a candle fill at their price, the stop
first; every portfolio limit applies; the same inputs give byte-identical results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from helios_core.timeframes import as_datetime
from helios_core.trading.enums import CloseReason, OrderPurpose, OrderSide, PositionSide, PositionStatus, TradingMode
from helios_core.trading.fills import FillModel
from helios_core.trading.orders import OrderFilled, OrderIntent, OrderRejected
from helios_core.trading.position import Position
from helios_live.backtest.backtester import Backtester, BacktestError, Market, _Candle, liquidation_price, touched
from helios_live.backtest.run import BacktestResult, run_backtest
from helios_live.data.recorded import load_recorded
from helios_live.execution.simulated import CandleExecutionClient
from helios_live.models.registry import Registry
from tests.conftest import SAMPLE, sample
from tests.live_support import BTC, live_settings, make_bundle
from tests.unit.live.test_replay import _forbid_the_wall_clock as forbid_the_wall_clock

START = datetime(2022, 1, 5, tzinfo=UTC)
END = datetime(2022, 1, 5, 8, tzinfo=UTC)
SLIP = FillModel().slippage_bps / 10_000


def _gapped(candles: pd.DataFrame) -> pd.DataFrame:
    """Real candles whose opens sit 0.1% above the previous close, so that a fill at the open
    and a fill at the signal's close cannot be confused."""
    out = candles.copy()
    opens = out["close"].shift(1).fillna(out["open"]) * 1.001
    out["open"] = opens
    out["high"] = out[["high", "open"]].max(axis=1)
    out["low"] = out[["low", "open"]].min(axis=1)
    return out


@pytest.fixture(scope="module")
def market() -> Market:
    return Market("1m", {"BTCPERP": _gapped(sample(BTC).head(1440 * 5))})


def _backtest(home: Path, market: Market, out: str = "run", **overrides: object) -> BacktestResult:
    pairs = tuple(market.base)
    values = {"live_min_confidence": 0.4, "live_warmup_days": 1, "risk_max_hold_s": 1800.0, **overrides}
    settings = live_settings(home, live_pairs=pairs, **values)
    registry = Registry(settings.models_root)
    version = registry.active() if settings.models_root.exists() else None
    version = version or make_bundle(settings.models_root, lean=0)
    return run_backtest(
        settings, model_version=version, pairs=pairs, start=START, end=END, out_dir=home / out,
        market=market, random_runs=5,
    )  # fmt: skip


def _query(ledger: Path, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(f"sqlite:///{ledger}")
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text(sql))]
    engine.dispose()
    return rows


def _rows(ledger: Path, table: str) -> list[tuple[object, ...]]:
    return _query(ledger, f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 -- the test's own table names


POSITIONS = (
    "SELECT p.opened_at, p.entry_price, p.side, pr.candle_ts, p.closed_at, p.exit_price, p.close_reason"
    " FROM positions p JOIN predictions pr ON pr.id = p.prediction_id ORDER BY p.id"
)


def test_orders_fill_at_the_next_candles_open_never_at_the_signals_close(tmp_path: Path, market: Market) -> None:
    result = _backtest(tmp_path, market)
    frame = market.base["BTCPERP"].set_index("ts")
    positions = _query(result.ledger, POSITIONS)
    assert len(positions) >= 2, "the leaning model must trade in eight hours"
    for opened_at, entry, side, candle_ts, *_ in positions:
        opened, decided = pd.Timestamp(str(opened_at), tz="UTC"), pd.Timestamp(str(candle_ts), tz="UTC")
        # decided at the close of the candle that opened at `decided`, filled as the next one opened
        assert opened == decided + pd.Timedelta(minutes=1)
        next_open, signal_close = frame.loc[opened, "open"], frame.loc[decided, "close"]
        assert entry == pytest.approx(next_open * (1 + SLIP if side == "LONG" else 1 - SLIP), rel=1e-12)
        assert abs(entry - signal_close * (1 + SLIP)) > 1e-4 * signal_close
    sources = {row[0] for row in _query(result.ledger, "SELECT source FROM fills")}
    assert sources <= {"OPEN", "TRIGGER"} and "OPEN" in sources


def _wicks(candles: pd.DataFrame) -> tuple[pd.DataFrame, set[pd.Timestamp]]:
    """Wicks far below, far above, or both ways, every 17 minutes of the backtest's hours."""
    out = candles.copy()
    both = set()
    at = out.index[out["ts"] >= pd.Timestamp(START)]
    for n, i in enumerate(at[30:450:17]):
        kind = n % 3
        if kind in (0, 2):
            out.loc[i, "low"] = out.loc[i, "open"] * 0.8
        if kind in (1, 2):
            out.loc[i, "high"] = out.loc[i, "open"] * 1.3
        if kind == 2:
            both.add(out.loc[i, "ts"])
    return out, both


def test_exits_inside_a_candle_fill_at_their_level_the_stop_first(tmp_path: Path, market: Market) -> None:
    candles, both = _wicks(market.base["BTCPERP"])
    result = _backtest(tmp_path, Market("1m", {"BTCPERP": candles}), risk_max_hold_s=6 * 3600.0)
    frame = candles.set_index("ts")
    levels = _query(result.ledger, "SELECT stop_loss_price, take_profit_price, exit_price, close_reason, side,"
                    " closed_at FROM positions WHERE close_reason IN ('STOP_LOSS', 'TAKE_PROFIT')")  # fmt: skip
    reasons = {row[3] for row in levels}
    assert reasons == {"STOP_LOSS", "TAKE_PROFIT"}, reasons
    in_both = [row[3] for row in levels if pd.Timestamp(str(row[5]), tz="UTC") in both]
    assert in_both and set(in_both) == {"STOP_LOSS"}
    for stop, target, exit_price, reason, side, closed_at in levels:
        candle = frame.loc[pd.Timestamp(str(closed_at), tz="UTC")]
        level = stop if reason == "STOP_LOSS" else target
        worse = 1 - SLIP if side == "LONG" else 1 + SLIP  # a closing sell slips down, a closing buy up
        gapped = (candle["open"] <= level) if (side == "LONG") == (reason == "STOP_LOSS") else candle["open"] >= level
        assert exit_price == pytest.approx((candle["open"] if gapped else level) * worse, rel=1e-12)
        assert candle["low"] <= level <= candle["high"] or gapped


def test_the_same_inputs_give_byte_identical_results(tmp_path: Path, market: Market) -> None:
    first = _backtest(tmp_path, market, "a")
    second = _backtest(tmp_path, market, "b")
    assert first.json.read_bytes() == second.json.read_bytes()
    assert first.html.read_bytes() == second.html.read_bytes()
    for table in ("predictions", "decision_steps", "orders", "fills", "positions", "portfolio_snapshots"):
        assert _rows(first.ledger, table) == _rows(second.ledger, table), table


def test_a_backtest_refuses_a_directory_that_holds_one(tmp_path: Path, market: Market) -> None:
    _backtest(tmp_path, market)
    with pytest.raises(BacktestError, match="holds a backtest already"):
        _backtest(tmp_path, market)


def _position(side: PositionSide, entry: float = 100.0, leverage: float = 1.0) -> Position:
    long = side is PositionSide.LONG
    return Position(
        key="k", pair="X", side=side, status=PositionStatus.OPEN, quantity=1.0, entry_price=entry,
        margin=entry / leverage, leverage=leverage, stop_loss_price=98.0 if long else 102.0,
        take_profit_price=103.0 if long else 97.0, opened_at=as_datetime(0), deadline=as_datetime(3600),
        entry_fee=0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("side", "candle", "expected"),
    [
        # both levels inside one candle: the stop is taken, whatever the order in which they came
        (PositionSide.LONG, _Candle(60, 100, 104, 97, 103.5, 1), (CloseReason.STOP_LOSS, 98.0)),
        (PositionSide.SHORT, _Candle(60, 100, 103, 96, 96.5, 1), (CloseReason.STOP_LOSS, 102.0)),
        (PositionSide.LONG, _Candle(60, 100, 103.5, 99, 101, 1), (CloseReason.TAKE_PROFIT, 103.0)),
        (PositionSide.SHORT, _Candle(60, 100, 101, 96.5, 99, 1), (CloseReason.TAKE_PROFIT, 97.0)),
        # opened beyond a level: filled at the open, worse than the stop / better than the target
        (PositionSide.LONG, _Candle(60, 95, 96, 94, 95, 1), (CloseReason.STOP_LOSS, 95.0)),
        (PositionSide.LONG, _Candle(60, 105, 106, 104, 105, 1), (CloseReason.TAKE_PROFIT, 105.0)),
        (PositionSide.LONG, _Candle(60, 100, 102, 99, 101, 1), None),
    ],
)
def test_levels_touched_inside_a_candle(side: PositionSide, candle: _Candle, expected: object) -> None:
    assert touched(_position(side), candle, 0.0035) == expected


def test_liquidation_price_is_where_margin_and_pnl_less_the_closing_fee_reach_zero() -> None:
    position = _position(PositionSide.LONG, leverage=4.0)
    price = liquidation_price(position, 0.0035)
    assert price is not None
    equity = position.margin + (price - position.entry_price) * position.quantity - price * position.quantity * 0.0035
    assert equity == pytest.approx(0.0, abs=1e-9)


def test_a_stop_inside_a_coarse_candle_is_resolved_on_its_1m_candles() -> None:
    """A 5m candle touching both levels; its 1m candles show the target came first."""
    coarse = _Candle(0, 100, 104, 97, 101, 5)
    minutes = [_Candle(0, 100, 103.5, 99.5, 103, 1), _Candle(60, 103, 103, 97, 98, 1)]
    market = Market("5m", {}, {})
    backtester = Backtester(live_settings(Path("/nonexistent")), market, "v")
    inside = backtester._inside(minutes, np.array([c.start for c in minutes]), coarse)
    assert inside == minutes
    hits = [touched(_position(PositionSide.LONG), c, 0.0035) for c in inside]
    assert hits[0] == (CloseReason.TAKE_PROFIT, 103.0)


def test_the_simulated_exchange_holds_market_orders_for_the_next_open() -> None:
    events: list[object] = []
    cash = 1_000.0
    client = CandleExecutionClient(FillModel(), lambda: cash)
    client.subscribe(events.append)

    def intent(cid: str, purpose: OrderPurpose, quantity: float) -> OrderIntent:
        return OrderIntent(cid, cid, "X", OrderSide.BUY, purpose, quantity, TradingMode.PAPER, as_datetime(60), 1.0)

    asyncio.run(client.submit(intent("a", OrderPurpose.OPEN, 1.0)))
    asyncio.run(client.submit(intent("b", OrderPurpose.OPEN, 100.0)))  # 10,000 of notional, 1,000 of cash
    assert not [e for e in events if isinstance(e, OrderFilled)]
    client.on_open("X", 100.0, 120.0)
    filled = [e for e in events if isinstance(e, OrderFilled)]
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [f.client_order_id for f in filled] == ["a"] and filled[0].fill.price == pytest.approx(100 * (1 + SLIP))
    assert filled[0].fill.filled_at == as_datetime(120.0)
    assert [r.client_order_id for r in rejected] == ["b"] and "insufficient cash" in rejected[0].reason


def test_every_portfolio_limit_counts_the_orders_waiting_for_the_next_open(tmp_path: Path) -> None:
    """Two pairs decide at each close; with room for one position the second must be refused
    while the first's order still waits for its fill."""
    btc = _gapped(sample(BTC).head(1440 * 5))
    twin = btc.assign(**{c: btc[c] * 0.07 for c in ("open", "high", "low", "close")})
    market = Market("1m", {"BTCPERP": btc, "ETHPERP": twin})
    result = _backtest(tmp_path, market, risk_max_open_positions=1)
    spans = [(t.opened_at, t.closed_at) for t in result.simulation.trades]
    assert spans
    for (_, a_close), (b_open, _) in zip(sorted(spans), sorted(spans)[1:], strict=False):
        assert b_open >= a_close  # never two at once
    # At one close: one pair's order placed (it fills at the next open), the other refused for it.
    same_close = _query(
        result.ledger,
        "SELECT a.candle_ts FROM predictions a JOIN decision_steps sa ON sa.prediction_id = a.id"
        " JOIN predictions b ON b.candle_ts = a.candle_ts AND b.pair != a.pair"
        " JOIN decision_steps sb ON sb.prediction_id = b.id"
        " WHERE sa.step = 'execution' AND sa.approved = 1"
        " AND sb.step = 'portfolio' AND sb.approved = 0 AND sb.reason LIKE 'max_open_positions: 1 open%'",
    )
    assert len(same_close) >= len(spans) - 1


def test_recorded_trades_backtest_with_paper_trading_fill_model(tmp_path: Path) -> None:
    recorded = load_recorded(SAMPLE, ["XRP-ETH"])
    first = recorded.trades["XRPETH"]["ts"].iloc[0].ceil("h").to_pydatetime()
    start, end = first + timedelta(hours=6), first + timedelta(hours=12)
    settings = live_settings(tmp_path, live_pairs=("XRPETH",), live_min_confidence=0.4, risk_max_hold_s=1800.0)
    version = make_bundle(settings.models_root, lean=0)
    result = run_backtest(
        settings, model_version=version, pairs=["XRPETH"], start=start, end=end, out_dir=tmp_path / "paper",
        fills="paper", recorded=recorded, random_runs=5,
    )  # fmt: skip
    assert result.simulation.fills == "paper" and result.simulation.trades
    assert result.report["fill_model"]["fills"].startswith("paper trading's")
    sources = {row[0] for row in _query(result.ledger, "SELECT source FROM fills")}
    assert sources and sources <= {"BOOK", "LAST"}  # paper's own fills, not the candle model's
    assert result.simulation.times[0] >= start.timestamp() and result.simulation.times[-1] <= end.timestamp()


def test_the_backtester_never_reads_the_wall_clock(
    tmp_path: Path, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = live_settings(tmp_path, live_min_confidence=0.4, live_warmup_days=1, risk_max_hold_s=1800.0)
    version = make_bundle(settings.models_root, lean=0)  # registering stamps the machine's time: before
    live = settings.live.model_copy(update={"close_grace_s": 0.0})
    own = settings.model_copy(update={"live": live, "database_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}"})
    forbid_the_wall_clock(monkeypatch)
    simulation = asyncio.run(Backtester(own, market, version).run(START.timestamp(), END.timestamp()))
    assert simulation.decisions > 400 and simulation.trades and not simulation.errors


def _resampled(candles: pd.DataFrame, rule: str) -> pd.DataFrame:
    grouped = candles.set_index("ts").resample(rule, label="left", closed="left")
    out = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return out.dropna().reset_index()


def test_a_5m_model_decides_on_5m_closes_and_its_exits_are_found_on_1m_candles(tmp_path: Path, market: Market) -> None:
    minutes, _ = _wicks(market.base["BTCPERP"])
    five = Market("5m", {"BTCPERP": _resampled(minutes, "5min")}, {"BTCPERP": minutes})
    values = {"live_min_confidence": 0.4, "live_warmup_days": 1, "risk_max_hold_s": 6 * 3600.0}
    settings = live_settings(tmp_path, **values)
    version = make_bundle(settings.models_root, lean=0, base="5m")
    result = run_backtest(
        settings, model_version=version, pairs=["BTCPERP"], start=START, end=END, out_dir=tmp_path / "run",
        market=five, random_runs=5,
    )  # fmt: skip
    decided = _query(result.ledger, "SELECT candle_ts, decided_at FROM predictions")
    assert len(decided) == (END - START).total_seconds() // 300
    assert all(pd.Timestamp(str(ts), tz="UTC").minute % 5 == 0 for ts, _ in decided)
    exits = _query(result.ledger, "SELECT closed_at FROM positions WHERE close_reason IN ('STOP_LOSS', 'TAKE_PROFIT')")
    stamps = [pd.Timestamp(str(row[0]), tz="UTC") for row in exits]
    assert stamps and any(t.minute % 5 for t in stamps)  # inside a 5m candle, at the 1m candle that touched
