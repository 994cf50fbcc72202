import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from helios_core.evaluation.baselines import buy_and_hold, percentile_rank, random_entries, random_entry
from helios_core.evaluation.metrics import (
    METRIC_KEYS,
    Trade,
    calibration,
    drawdown,
    metrics,
    monthly_returns,
    per_pair,
)

DAY = 86400.0
T0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()


def trade(
    opened_at: float,
    closed_at: float,
    pnl: float,
    *,
    pair: str = "BTCZAR",
    entry: float = 100.0,
    exit_price: float = 100.0,
    quantity: float = 1.0,
    fees: float = 0.0,
) -> Trade:
    return Trade(
        pair=pair,
        side="LONG",
        opened_at=opened_at,
        closed_at=closed_at,
        entry_price=entry,
        exit_price=exit_price,
        quantity=quantity,
        margin=entry * quantity,
        leverage=1.0,
        fees=fees,
        pnl=pnl,
        reason="TIMEOUT",
    )


def candles(opens: list[float], closes: list[float], *, start: float = T0, step: float = 60.0) -> pd.DataFrame:
    ts = pd.to_datetime(start + step * np.arange(len(opens)), unit="s", utc=True)
    high = np.maximum(opens, closes)
    low = np.minimum(opens, closes)
    return pd.DataFrame({"ts": ts, "open": opens, "high": high, "low": low, "close": closes})


def walk(n: int, seed: int, start_price: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    closes = start_price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    opens = np.concatenate(([start_price], closes[:-1]))
    return candles(list(opens), list(closes), step=300.0)


def test_a_known_drawdown_and_its_duration() -> None:
    times = np.arange(6) * 10.0
    equity = np.array([100.0, 110.0, 99.0, 105.0, 111.0, 108.0])

    m = metrics(times, equity, [], capital=100.0)

    assert drawdown(equity) == pytest.approx([0.0, 0.0, 0.1, 5 / 110, 0.0, 3 / 111])
    assert m["max_drawdown"] == pytest.approx(0.1)
    # Below the peak of t=10 until it is regained at t=40; the later dip (40 -> 50) is shorter.
    assert m["max_drawdown_duration_s"] == 30.0
    assert m["final_equity"] == 108.0
    assert m["total_return"] == pytest.approx(0.08)


def test_a_drawdown_not_recovered_lasts_to_the_end() -> None:
    times = np.array([0.0, 10.0, 20.0, 50.0])
    m = metrics(times, np.array([100.0, 120.0, 90.0, 100.0]), [], capital=100.0)
    assert m["max_drawdown"] == pytest.approx(0.25)
    assert m["max_drawdown_duration_s"] == 40.0


@pytest.mark.parametrize("seed", range(20))
def test_the_drawdown_duration_matches_a_walk_through_the_curve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(1, 5, 40)).astype(float)
    equity = 100 + np.cumsum(rng.integers(-3, 4, 40)).astype(float)
    longest, peak, peak_at, below = 0.0, equity[0], times[0], False
    for t, e in zip(times, equity, strict=True):
        if e >= peak:
            if below:  # back at the peak: the stretch below it ends here
                longest = max(longest, t - peak_at)
            peak, peak_at, below = e, t, False
        else:
            below = True
    if below:
        longest = max(longest, times[-1] - peak_at)

    assert metrics(times, equity, [], capital=100.0)["max_drawdown_duration_s"] == longest
    assert metrics(times, np.sort(equity), [], capital=100.0)["max_drawdown_duration_s"] == 0.0


def test_sharpe_sortino_cagr_and_calmar_by_hand() -> None:
    times = T0 + np.arange(4) * DAY
    equity = np.array([100.0, 110.0, 121.0, 108.9])  # returns +10%, +10%, -10%

    m = metrics(times, equity, [], capital=100.0)

    # mean 1/30, sample std sqrt(1/75), downside deviation sqrt(0.01 / 3); 365 steps a year
    assert m["sharpe"] == pytest.approx(math.sqrt(75) / 30 * math.sqrt(365))
    assert m["sortino"] == pytest.approx(math.sqrt(300) / 30 * math.sqrt(365))
    assert m["cagr"] == pytest.approx(1.089 ** (365 / 3) - 1)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["calmar"] == pytest.approx((1.089 ** (365 / 3) - 1) / 0.1)


def test_a_flat_curve_has_no_sharpe_sortino_or_calmar() -> None:
    times = T0 + np.arange(10) * 300.0
    m = metrics(times, np.full(10, 1000.0), [], capital=1000.0)
    assert m["sharpe"] is None and m["sortino"] is None and m["calmar"] is None
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_duration_s"] == 0.0
    assert m["total_return"] == 0.0 and m["cagr"] == 0.0


def test_a_curve_that_only_rises_has_no_sortino() -> None:
    m = metrics(np.arange(4.0), np.array([100.0, 101.0, 103.0, 104.0]), [], capital=100.0)
    assert m["sharpe"] is not None and m["sharpe"] > 0
    assert m["sortino"] is None


def test_two_overlapping_trades() -> None:
    times = np.arange(11) * 10.0  # span 100 s
    trades = [
        trade(10.0, 40.0, 30.0, entry=100.0, exit_price=110.0, quantity=1.0, fees=1.0),
        trade(30.0, 60.0, -10.0, entry=50.0, exit_price=40.0, quantity=2.0, fees=0.5),
    ]

    m = metrics(times, np.full(11, 1000.0), trades, capital=1000.0)

    assert m["trades"] == 2
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(3.0)
    assert m["expectancy"] == pytest.approx(10.0)
    assert m["exposure"] == pytest.approx(0.5)  # the union [10, 60], not 30 + 30
    assert m["turnover"] == pytest.approx((210.0 + 180.0) / 1000.0)
    assert m["avg_holding_s"] == pytest.approx(30.0)
    assert m["fees"] == pytest.approx(1.5)


def test_exposure_counts_only_the_grid_span() -> None:
    times = np.array([100.0, 200.0])
    m = metrics(times, np.array([1.0, 1.0]), [trade(50.0, 150.0, 1.0), trade(180.0, 400.0, 1.0)], capital=1.0)
    assert m["exposure"] == pytest.approx(0.7)


def test_exposure_of_trades_nested_in_a_long_one() -> None:
    times = np.array([0.0, 200.0])
    nested = [trade(0.0, 100.0, 1.0), trade(10.0, 20.0, 1.0), trade(30.0, 40.0, 1.0), trade(150.0, 160.0, 1.0)]
    assert metrics(times, np.array([1.0, 1.0]), nested, capital=1.0)["exposure"] == pytest.approx(0.55)


def test_no_trades_leaves_the_trade_figures_undefined() -> None:
    m = metrics(np.arange(5.0), np.full(5, 100.0), [], capital=100.0)
    assert m["trades"] == 0
    for key in ("win_rate", "profit_factor", "expectancy", "avg_holding_s"):
        assert m[key] is None, key
    assert m["exposure"] == 0.0 and m["turnover"] == 0.0 and m["fees"] == 0.0


def test_only_winners_have_no_profit_factor() -> None:
    m = metrics(np.arange(5.0), np.full(5, 100.0), [trade(0.0, 1.0, 5.0), trade(1.0, 2.0, 3.0)], capital=100.0)
    assert m["profit_factor"] is None and m["win_rate"] == 1.0


@pytest.mark.parametrize(
    ("times", "equity"),
    [
        (np.array([]), np.array([])),
        (np.array([5.0]), np.array([100.0])),
        (np.arange(3.0), np.array([100.0, -5.0, 10.0])),
        (np.arange(3.0), np.array([100.0, 50.0, 0.0])),
        (np.arange(3.0), np.array([0.0, 0.0, 0.0])),
    ],
)
def test_degenerate_curves_give_json_without_inf_or_nan(times: np.ndarray, equity: np.ndarray) -> None:
    m = metrics(times, equity, [trade(0.0, 0.0, 0.0)], capital=100.0)
    assert tuple(m) == METRIC_KEYS
    json.dumps(m, allow_nan=False)


def test_a_nan_pnl_is_undefined_and_a_nan_equity_is_refused() -> None:
    m = metrics(np.arange(3.0), np.full(3, 100.0), [trade(0.0, 1.0, math.nan)], capital=100.0)
    assert m["expectancy"] is None and m["trades"] == 1
    json.dumps(m, allow_nan=False)
    with pytest.raises(ValueError, match="finite"):
        metrics(np.arange(3.0), np.array([100.0, math.nan, 100.0]), [], capital=100.0)


def test_a_non_positive_equity_leaves_the_return_ratios_undefined() -> None:
    ruined = metrics(np.arange(3.0), np.array([100.0, 50.0, 0.0]), [], capital=100.0)
    through_zero = metrics(np.arange(3.0), np.array([100.0, -5.0, 10.0]), [], capital=100.0)

    assert ruined["total_return"] == -1.0 and ruined["max_drawdown"] == 1.0
    assert ruined["cagr"] is None and ruined["calmar"] is None
    assert ruined["sharpe"] is not None  # both returns start from a positive equity
    assert through_zero["sharpe"] is None and through_zero["sortino"] is None  # a return from -5 means nothing
    assert through_zero["max_drawdown"] == pytest.approx(1.05)


def test_a_single_point_has_no_span() -> None:
    m = metrics(np.array([5.0]), np.array([100.0]), [], capital=100.0)
    assert m["cagr"] is None and m["exposure"] is None and m["sharpe"] is None
    assert m["final_equity"] == 100.0


def test_per_pair_curves_are_realised_pnl_stepped_at_the_close() -> None:
    times = np.arange(0.0, 101.0, 10.0)
    trades = [
        trade(0.0, 20.0, -10.0, pair="BTCZAR"),
        trade(30.0, 50.0, 30.0, pair="BTCZAR"),
        trade(0.0, 95.0, 5.0, pair="ETHZAR"),
    ]

    out = per_pair(times, trades, capital=100.0)

    assert list(out) == ["BTCZAR", "ETHZAR"]
    assert out["BTCZAR"]["trades"] == 2 and out["ETHZAR"]["trades"] == 1
    assert out["BTCZAR"]["final_equity"] == pytest.approx(120.0)
    assert out["BTCZAR"]["max_drawdown"] == pytest.approx(0.1)
    # At the peak until t=10 (the loss closes at 20), back above it at the win's close at 50.
    assert out["BTCZAR"]["max_drawdown_duration_s"] == 40.0
    assert out["ETHZAR"]["final_equity"] == pytest.approx(105.0)
    assert out["ETHZAR"]["total_return"] == pytest.approx(0.05)
    assert out["ETHZAR"]["exposure"] == pytest.approx(0.95)


def test_monthly_returns_across_a_month_boundary() -> None:
    times = np.array(
        [
            datetime(2022, 1, 30, tzinfo=UTC).timestamp(),
            datetime(2022, 1, 31, 23, 55, tzinfo=UTC).timestamp(),
            datetime(2022, 2, 1, tzinfo=UTC).timestamp(),
            datetime(2022, 2, 28, 23, 55, tzinfo=UTC).timestamp(),
            datetime(2022, 3, 1, tzinfo=UTC).timestamp(),
        ]
    )
    equity = np.array([100.0, 110.0, 120.0, 132.0, 66.0])

    out = monthly_returns(times, equity)

    assert [row["month"] for row in out] == ["2022-01", "2022-02", "2022-03"]
    assert [row["return"] for row in out] == pytest.approx([0.1, 0.2, -0.5])


def test_calibration_on_known_bins() -> None:
    confidence = np.array([0.15, 0.15, 0.95, 0.95, 0.95, 1.0])
    correct = np.array([0, 1, 1, 1, 0, 1], dtype=bool)

    out = calibration(confidence, correct, bins=10)

    assert out["n"] == 6
    assert [(b["lo"], b["hi"], b["count"]) for b in out["bins"]] == [
        (pytest.approx(0.1), pytest.approx(0.2), 2),
        (pytest.approx(0.9), pytest.approx(1.0), 4),
    ]
    assert out["bins"][0]["accuracy"] == 0.5 and out["bins"][0]["mean_confidence"] == pytest.approx(0.15)
    assert out["bins"][1]["accuracy"] == 0.75 and out["bins"][1]["mean_confidence"] == pytest.approx(0.9625)
    assert out["ece"] == pytest.approx((2 * 0.35 + 4 * 0.2125) / 6)


def test_calibration_of_nothing() -> None:
    assert calibration(np.array([]), np.array([])) == {"bins": [], "ece": None, "n": 0}


def test_buy_and_hold_on_two_candles_pays_fees_and_slippage() -> None:
    frame = candles([100.0, 103.0], [103.0, 102.0])  # 1m candles opening at T0 and T0 + 60
    times = T0 + np.array([0.0, 30.0, 60.0, 90.0, 120.0, 150.0])

    equity, trades = buy_and_hold(
        {"BTCZAR": frame}, times=times, start=T0, end=T0 + 120, capital=1000.0, taker_fee=0.01, slippage_bps=100.0
    )

    q = 1000.0 / (101.0 * 1.01)  # bought at 100 + 1% slippage; 1000 pays notional and its 1% fee
    exit_price = 102.0 * 0.99
    final = q * exit_price * 0.99
    # Cost basis until the first close, then marked at closes, then the cash after the sale.
    assert equity == pytest.approx([101 * q, 101 * q, 103 * q, 103 * q, final, final])
    [t] = trades
    assert (t.pair, t.side, t.reason) == ("BTCZAR", "LONG", "END_OF_TEST")
    assert (t.opened_at, t.closed_at) == (T0, T0 + 120)
    assert t.entry_price == pytest.approx(101.0) and t.exit_price == pytest.approx(exit_price)
    assert t.quantity == pytest.approx(q)
    assert t.fees == pytest.approx(0.01 * q * (101.0 + exit_price))
    assert t.pnl == pytest.approx(final - 1000.0)


def test_buy_and_hold_splits_capital_only_across_pairs_with_candles_in_the_window() -> None:
    inside = candles([100.0, 100.0], [100.0, 100.0])
    later = candles([50.0, 50.0], [50.0, 50.0], start=T0 + DAY)
    times = T0 + np.array([0.0, 120.0])

    equity, trades = buy_and_hold(
        {"BTCZAR": inside, "ETHZAR": later, "XRPZAR": inside.iloc[:0]},
        times=times,
        start=T0,
        end=T0 + 120,
        capital=1000.0,
        taker_fee=0.0,
        slippage_bps=0.0,
    )

    assert [t.pair for t in trades] == ["BTCZAR"]
    assert trades[0].quantity == pytest.approx(10.0)
    assert equity == pytest.approx([1000.0, 1000.0])


def random_setup() -> tuple[dict[str, pd.DataFrame], list[Trade], np.ndarray, float, float]:
    frames = {"BTCZAR": walk(2000, 1), "ETHZAR": walk(2000, 2, start_price=20.0)}
    start, end = T0, T0 + 2000 * 300.0
    trades = [
        trade(T0 + 3000, T0 + 3000 + 3600, 1.0, pair="BTCZAR", entry=100.0, quantity=3.0),
        trade(T0 + 9000, T0 + 9000 + 900, -1.0, pair="BTCZAR", entry=101.0, quantity=1.5),
        trade(T0 + 6000, T0 + 6000 + 86400, 2.0, pair="ETHZAR", entry=20.0, quantity=40.0),
    ]
    times = T0 + 300.0 * np.arange(1, 2001)
    return frames, trades, times, start, end


COSTS = {"capital": 10_000.0, "taker_fee": 0.0035, "slippage_bps": 5.0}


def test_random_entry_is_determined_by_its_seed() -> None:
    frames, trades, times, start, end = random_setup()

    a = random_entry(frames, trades, times=times, start=start, end=end, seed=7, **COSTS)
    b = random_entry(frames, trades, times=times, start=start, end=end, seed=7, **COSTS)
    c = random_entry(frames, trades, times=times, start=start, end=end, seed=8, **COSTS)

    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    assert [t.opened_at for t in a[1]] != [t.opened_at for t in c[1]]


def test_random_trades_keep_the_models_pair_holding_notional_and_size() -> None:
    frames, trades, times, start, end = random_setup()

    equity, made = random_entry(frames, trades, times=times, start=start, end=end, seed=3, **COSTS)

    assert len(made) == len(trades)
    for model, rand in zip(trades, made, strict=True):
        assert rand.pair == model.pair
        assert rand.closed_at - rand.opened_at == model.closed_at - model.opened_at
        assert rand.entry_price * rand.quantity == pytest.approx(model.entry_price * model.quantity)
        assert (rand.margin, rand.leverage) == (model.margin, model.leverage)
        assert start <= rand.opened_at and rand.closed_at <= end
    # Every random trade has closed by the last grid point: only realised pnl is left.
    assert equity[-1] == pytest.approx(COSTS["capital"] + sum(t.pnl for t in made))


def test_random_sides_and_entries_spread_over_the_choices() -> None:
    frames, _, times, start, end = random_setup()
    many = [trade(T0, T0 + 3600, 0.0, pair="BTCZAR") for _ in range(400)]

    _, made = random_entry(frames, many, times=times, start=start, end=end, seed=11, **COSTS)

    longs = sum(t.side == "LONG" for t in made) / len(made)
    assert 0.4 < longs < 0.6
    assert len({t.opened_at for t in made}) > 300  # 1,989 possible entry candles


def test_a_random_trade_is_priced_and_marked_by_hand() -> None:
    # One possible entry candle: the window is exactly the holding time of two candles.
    frame = candles([100.0, 104.0], [104.0, 110.0])
    model = trade(T0, T0 + 120, 0.0, entry=100.0, quantity=2.0)
    times = T0 + np.array([0.0, 30.0, 60.0, 90.0, 120.0])

    equity, [t] = random_entry(
        {"BTCZAR": frame},
        [model],
        times=times,
        start=T0,
        end=T0 + 120,
        capital=1000.0,
        taker_fee=0.01,
        slippage_bps=100.0,
        seed=0,
    )

    sign = 1.0 if t.side == "LONG" else -1.0
    entry = 100.0 * (1 + sign * 0.01)
    quantity = 200.0 / entry
    exit_price = 110.0 * (1 - sign * 0.01)
    fees = 2.0 + exit_price * quantity * 0.01
    pnl = sign * quantity * (exit_price - entry) - fees
    assert (t.opened_at, t.closed_at, t.reason) == (T0, T0 + 120, "TIMEOUT")
    assert t.entry_price == pytest.approx(entry) and t.exit_price == pytest.approx(exit_price)
    assert t.fees == pytest.approx(fees) and t.pnl == pytest.approx(pnl)
    marked = 1000.0 - 2.0 + sign * quantity * (104.0 - entry)
    assert equity == pytest.approx([998.0, 998.0, marked, marked, 1000.0 + pnl])


def test_random_entry_skips_trades_it_cannot_place() -> None:
    frame = candles([100.0] * 3, [100.0] * 3)
    trades = [trade(T0, T0 + 600, 1.0), trade(T0, T0 + 60, 1.0, pair="ETHZAR")]

    equity, made = random_entry(
        {"BTCZAR": frame}, trades, times=T0 + np.arange(3) * 60.0, start=T0, end=T0 + 180, seed=0, **COSTS
    )

    assert made == [] and np.all(equity == COSTS["capital"])


def test_random_entries_summarise_the_runs() -> None:
    frames, trades, times, start, end = random_setup()

    out = random_entries(frames, trades, runs=8, seed=5, times=times, start=start, end=end, **COSTS)
    again = random_entries(frames, trades, runs=8, seed=5, times=times, start=start, end=end, **COSTS)

    assert out == again
    assert (out["runs"], out["seed"]) == (8, 5)
    assert set(out["median"]) == set(METRIC_KEYS) == set(out["p05"]) == set(out["p95"])
    assert len(out["equity_median"]) == len(times)
    assert len(out["samples"]["total_return"]) == 8 and len(out["samples"]["sharpe"]) == 8
    low, mid, high = (out[q]["total_return"] for q in ("p05", "median", "p95"))
    assert low is not None and mid is not None and high is not None
    assert low <= mid <= high
    assert out["median"]["trades"] == 3
    single = random_entry(frames, trades, times=times, start=start, end=end, seed=5, **COSTS)
    assert out["samples"]["total_return"][0] == pytest.approx(single[0][-1] / COSTS["capital"] - 1)
    json.dumps(out, allow_nan=False)


def test_percentile_rank() -> None:
    assert percentile_rank(2.5, [1.0, 2.0, 3.0, None]) == pytest.approx(2 / 3)
    assert percentile_rank(2.0, [1.0, 2.0, 3.0]) == pytest.approx(1 / 3)  # strictly below
    assert percentile_rank(None, [1.0]) is None
    assert percentile_rank(1.0, [None]) is None
