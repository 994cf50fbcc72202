"""Attribution from the ledger and the lake, over REST: a long opened the day before and closed
mid-day and a short opened and closed within the day, on 100,000 of equity, checked by hand;
the volume benchmark; what the lake lacks listed, never invented; and the window's validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helios_core.trading.account import PortfolioSnapshot
from helios_core.trading.enums import CloseReason, OrderPurpose, OrderStatus, PositionSide, PositionStatus, TradingMode
from helios_core.trading.orders import Fill, Order, OrderIntent
from helios_core.trading.position import Execution, Position
from helios_live.allocation.attribution import attribution
from helios_live.api.app import create_app
from helios_live.data.lake import Lake
from helios_live.ledger import Ledger
from tests.live_support import live_settings

D0, D1, D2 = date(2026, 6, 9), date(2026, 6, 10), date(2026, 6, 11)
M0, M1 = datetime(2026, 6, 9, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC)
PAIRS = ("BTCZAR", "ETHZAR")
FEE = 0.0035
# Each day's 1m candles: (close at 12:00, its volume, close at 23:59). The 23:59 close is the
# price at the next midnight; the 12:00 candle carries the day's quote volume.
CANDLES = {
    "BTCZAR": {D0 - timedelta(days=1): (1_000_000.0, 0.3, 1_000_000.0), D0: (1_000_000.0, 0.3, 1_020_000.0),
               D1: (1_040_000.0, 0.3, 1_071_000.0)},
    "ETHZAR": {D0 - timedelta(days=1): (50_000.0, 2.0, 50_000.0), D0: (50_000.0, 2.0, 51_000.0),
               D1: (50_000.0, 2.0, 49_980.0)},
}  # fmt: skip
TOL = 1e-12
TOKEN = "Qm4tY8wZ2cV6bN0xK3pL-attr"  # noqa: S105 -- a test secret (a tokenless service answers loopback hosts only)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def execution(position: Position, purpose: OrderPurpose, price: float, fee: float, at: datetime) -> Execution:
    side = position.side.entry if purpose is OrderPurpose.OPEN else position.side.exit
    cid = f"{position.key}-{'O' if purpose is OrderPurpose.OPEN else 'C'}"
    intent = OrderIntent(cid, position.key, position.pair, side, purpose, position.quantity, TradingMode.PAPER, at)
    fill = Fill(cid, price, position.quantity, fee, "TAKER", "BOOK", 1, at)
    return Execution(Order(intent, OrderStatus.FILLED, (fill,)), position)


def trade(ledger: Ledger, key: str, pair: str, side: PositionSide, quantity: float,
          opened: tuple[datetime, float], closed: tuple[datetime, float]) -> None:  # fmt: skip
    """A position opened and closed at (time, price), paying the taker fee both ways."""
    (open_at, entry), (close_at, exit_price) = opened, closed
    position = Position(key, pair, side, PositionStatus.OPEN, quantity, entry, entry * quantity, 1.0, 1.0, 1e9,
                        open_at, open_at + timedelta(days=2), FEE * entry * quantity)  # fmt: skip
    ledger.write(opens=[(None, execution(position, OrderPurpose.OPEN, entry, position.entry_fee, open_at))])
    fee = FEE * exit_price * quantity
    done = replace(position, status=PositionStatus.CLOSED, exit_price=exit_price, closed_at=close_at,
                   close_reason=CloseReason.TIMEOUT, exit_fee=fee, realised_pnl=0.0)  # fmt: skip
    ledger.write(closes=[execution(done, OrderPurpose.CLOSE, exit_price, fee, close_at)])


def snapshot(at: datetime, equity: float) -> PortfolioSnapshot:
    return PortfolioSnapshot(at, equity, 0.0, 0.0, equity, equity, 0.0, equity, 0.0, 0, "PERIODIC")


def seed(ledger: Ledger, lake: Lake) -> None:
    for pair, days in CANDLES.items():
        for day, (noon, volume, last) in days.items():
            midnight = pd.Timestamp(day.isoformat(), tz="UTC")
            ts = [midnight + pd.Timedelta(hours=12), midnight + pd.Timedelta(hours=23, minutes=59)]
            prices = {column: [noon, last] for column in ("open", "high", "low", "close")}
            counts = pd.array([1, 0], dtype="Int64")
            frame = pd.DataFrame(
                {"ts": ts, **prices, "volume": [volume, 0.0], "trade_count": counts, "buy_volume": 0.0}
            )
            lake.write("candles", pair, "1m", day, frame, {})
    # 0.05 BTC bought on D0 at 12:00 at 1,000,000, sold on D1 at 10:00 at 1,040,000
    trade(ledger, "btc", "BTCZAR", PositionSide.LONG, 0.05,
          (M0 + timedelta(hours=12), 1_000_000.0), (M1 + timedelta(hours=10), 1_040_000.0))  # fmt: skip
    # 1 ETH sold on D1 at 12:00 at 50,500, bought back at 18:00 at 50,000
    trade(ledger, "eth", "ETHZAR", PositionSide.SHORT, 1.0,
          (M1 + timedelta(hours=12), 50_500.0), (M1 + timedelta(hours=18), 50_000.0))  # fmt: skip
    ledger.write(snapshots=[snapshot(M1 - timedelta(minutes=1), 100_000.0), snapshot(M1 + timedelta(hours=11), 1.0)])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = live_settings(tmp_path, live_pairs=PAIRS, api_token=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        seed(test_client.app.state.ledger, Lake(settings.lake_root))  # type: ignore[attr-defined]
        yield test_client


def test_a_day_with_a_long_closed_mid_day_and_a_short_in_and_out_by_hand(client: TestClient) -> None:
    """D1, equity at the start 100,000 (the snapshot at 23:59; the one at 11:00 is later).
    BTC: start price 1,020,000 (D0's last close), end 1,071,000: r = 0.05. The long of 0.05
    weighs 0.05 x 1,020,000 / 100,000 = 0.51; sold at 1,040,000 for a fee of 0.0035 x 52,000
    = 182: P&L 0.05 x 20,000 - 182 = 818, c = 0.00818; w0 r = 0.0255, timing -0.01732.
    ETH: r = 49,980 / 51,000 - 1 = -0.02, w0 = 0; the short made 500 less fees 176.75 + 175:
    148.25, c = 0.0014825, all timing.
    Equal benchmark: R_b = (0.05 - 0.02) / 2 = 0.015; R_h = 0.0255; R_p = 0.0096625.
    crypto (w_p 0.51, w_b 1, r_p 0.05, r_b 0.015): allocation 0, selection 0.035,
    interaction -0.49 x 0.035 = -0.01715; cash 0.49: allocation -0.49 x 0.015 = -0.00735.
    Total -0.0053375 = R_p - R_b."""
    body = client.get(
        "/api/portfolio/attribution", params={"start": "2026-06-10", "end": "2026-06-10"}, headers=AUTH
    ).json()

    (day,) = body["days"]
    assert day["date"] == "2026-06-10" and body["benchmark"] == "equal" and body["linking"] == "carino"
    assert day["portfolio_return"] == pytest.approx(0.0096625, abs=TOL)
    assert day["benchmark_return"] == pytest.approx(0.015, abs=TOL)
    assert day["held_return"] == pytest.approx(0.0255, abs=TOL)
    btc, eth = day["pairs"]
    assert (btc["weight"], btc["contribution"], btc["timing"]) == pytest.approx((0.51, 0.00818, -0.01732), abs=TOL)
    assert (eth["weight"], eth["contribution"], eth["market_return"]) == pytest.approx((0.0, 0.0014825, -0.02))
    crypto, cash = day["segments"]
    assert (crypto["segment"], cash["segment"]) == ("crypto", "cash")
    assert crypto["portfolio_return"] == pytest.approx(0.05)
    effects = crypto["effects"]
    assert (effects["allocation"], effects["selection"], effects["interaction"]) == pytest.approx(
        (0.0, 0.035, -0.01715), abs=TOL
    )
    assert cash["effects"]["allocation"] == pytest.approx(-0.00735, abs=TOL)
    assert day["effects"]["timing"] == pytest.approx(-0.0158375, abs=TOL)
    assert body["effects"]["total"] == pytest.approx(-0.0053375, abs=TOL)
    assert body["missing"] == []


def test_the_volume_benchmark_weighs_the_pairs_by_their_trailing_quote_volume(client: TestClient) -> None:
    """Before D1 the lake holds D-1 and D0: BTC 2 x 0.3 x 1,000,000 = 600,000, ETH 2 x 2 x
    50,000 = 200,000 of quote volume: weights 0.75 and 0.25, R_b = 0.0375 - 0.005 = 0.0325.
    crypto: selection 0.05 - 0.0325 = 0.0175, interaction -0.49 x 0.0175 = -0.008575; cash
    -0.49 x 0.0325 = -0.015925."""
    params = {"start": "2026-06-10", "end": "2026-06-10", "benchmark": "volume"}
    body = client.get("/api/portfolio/attribution", params=params, headers=AUTH).json()

    (day,) = body["days"]
    assert [p["benchmark"] for p in day["pairs"]] == pytest.approx([0.75, 0.25], abs=TOL)
    assert day["benchmark_return"] == pytest.approx(0.0325, abs=TOL)
    crypto, cash = day["segments"]
    assert (crypto["effects"]["selection"], crypto["effects"]["interaction"]) == pytest.approx(
        (0.0175, -0.008575), abs=TOL
    )
    assert cash["effects"]["allocation"] == pytest.approx(-0.015925, abs=TOL)


def test_a_window_links_its_days_and_lists_a_day_without_prices(client: TestClient) -> None:
    """D0: no snapshot before it, so the capital (100,000); the long opened at 1,000,000 is
    worth 1,020,000 at midnight: 0.05 x 20,000 - 175 = 825, c = 0.00825, all timing; R_b = 0.02.
    D2 has no candles: it is left out, and why is listed."""
    params = {"start": "2026-06-09", "end": "2026-06-11"}
    body = client.get("/api/portfolio/attribution", params=params, headers=AUTH).json()

    assert [d["date"] for d in body["days"]] == ["2026-06-09", "2026-06-10"]
    first = body["days"][0]
    assert (first["portfolio_return"], first["benchmark_return"]) == pytest.approx((0.00825, 0.02), abs=TOL)
    assert first["segments"][0]["portfolio_return"] is None  # nothing held at the start
    compounded = 1.00825 * 1.0096625 - 1.02 * 1.015
    assert body["portfolio_return"] - body["benchmark_return"] == pytest.approx(compounded, abs=TOL)
    assert body["effects"]["total"] == pytest.approx(compounded, abs=TOL)
    assert {(m["date"], m["pair"]) for m in body["missing"]} == {
        ("2026-06-11", "BTCZAR"),
        ("2026-06-11", "ETHZAR"),
        ("2026-06-11", None),
    }


def test_a_position_without_a_price_leaves_its_day_out(client: TestClient, tmp_path: Path) -> None:
    ledger = client.app.state.ledger  # type: ignore[attr-defined]

    window = attribution(ledger, Lake(tmp_path / "empty"), D1, D1, universe=PAIRS, capital=100_000.0)

    assert window.days == ()
    whats = [m.what for m in window.missing if m.pair == "BTCZAR"]
    assert "no 1m close at the day's start for its holding: day left out" in whats


def test_the_default_window_is_the_thirty_days_to_yesterday(client: TestClient) -> None:
    body = client.get("/api/portfolio/attribution", headers=AUTH).json()

    start, end = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
    assert (end - start).days == 29 and end < datetime.now(UTC).date()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-06-10", "end": "2026-06-09"}, "is before start"),
        ({"start": "2025-01-01", "end": "2026-01-02"}, "at most 366"),
        ({"end": "2999-01-01"}, "finished UTC day"),
        ({"end": "0001-01-05"}, "on or after 2009-01-03"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "on or after 2009-01-03"),
        ({"benchmark": "market"}, None),
        ({"start": "10/06/2026"}, None),
    ],
)
def test_a_bad_window_is_refused(client: TestClient, params: dict[str, str], message: str | None) -> None:
    response = client.get("/api/portfolio/attribution", params=params, headers=AUTH)

    assert response.status_code == 422
    if message is not None:
        assert message in response.json()["detail"]
