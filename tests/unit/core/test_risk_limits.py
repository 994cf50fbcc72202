import math

import pytest

from helios_core.risk.limits import Exposure, Limits, PortfolioView, Proposal, check

LIMITS = Limits()
FLAT = PortfolioView(equity=100_000.0, peak=100_000.0, day_start_equity=100_000.0)
BTC = Proposal("BTCZAR", "crypto", 10_000.0, 1.0)


def unrelated(a: str, b: str) -> float | None:
    return 0.5


class Correlation:
    """A fixed correlation table; pairs not in it are unknown (None)."""

    def __init__(self, table: dict[frozenset[str], float]) -> None:
        self.table = table
        self.asked: list[tuple[str, str]] = []

    def __call__(self, a: str, b: str) -> float | None:
        self.asked.append((a, b))
        return self.table.get(frozenset((a, b)))


def crypto(pair: str, margin: float, lev: float = 1.0) -> Exposure:
    return Exposure(pair, "crypto", margin, lev)


def test_a_trade_within_every_limit_passes_and_reports_its_metrics() -> None:
    violations, metrics = check(LIMITS, FLAT, BTC, unrelated)
    assert violations == []
    assert metrics == {
        "drawdown": 0.0,
        "daily_return": 0.0,
        "open_positions": 0.0,
        "position_share": 0.1,
        "sector_share": 0.1,
        "leverage": 0.1,
        "max_correlation": pytest.approx(math.nan, nan_ok=True),
    }


@pytest.mark.parametrize(
    ("view", "proposal", "expected"),
    [
        (
            PortfolioView(84_500.0, 100_000.0, 84_500.0),
            Proposal("BTCZAR", "crypto", 5_000.0, 1.0),
            "max_drawdown: drawdown 15.50% >= 15.00%",
        ),
        (PortfolioView(94_800.0, 100_000.0, 100_000.0), BTC, "daily_loss: today -5.20% <= -5.00%"),
        (
            PortfolioView(100_000.0, 100_000.0, 100_000.0, tuple(crypto(f"P{i}ZAR", 1_000.0) for i in range(10))),
            BTC,
            "max_open_positions: 10 open >= 10",
        ),
        (FLAT, Proposal("BTCZAR", "crypto", 25_000.0, 1.0), "max_position: BTCZAR would be 25.00% of equity > 20.00%"),
        (
            PortfolioView(100_000.0, 100_000.0, 100_000.0, tuple(crypto(p, 18_000.0) for p in ("A", "B", "C"))),
            Proposal("BTCZAR", "crypto", 11_000.0, 1.0),
            "max_sector_exposure: crypto would be 65.00% > 60.00%",
        ),
        (
            PortfolioView(100_000.0, 100_000.0, 100_000.0, (crypto("ETHZAR", 5_000.0),)),
            BTC,
            "max_correlation: BTCZAR vs ETHZAR 0.95 > 0.90",
        ),
        (
            PortfolioView(100_000.0, 100_000.0, 100_000.0, (crypto("A", 20_000.0, 8.0), crypto("B", 20_000.0, 7.0))),
            Proposal("BTCZAR", "crypto", 10_000.0, 2.0),
            "max_leverage: portfolio 3.20x > 3.00x",
        ),
    ],
    ids=[
        "max_drawdown",
        "daily_loss",
        "max_open_positions",
        "max_position",
        "max_sector_exposure",
        "max_correlation",
        "max_leverage",
    ],
)
def test_each_limit_denies_on_its_own(view: PortfolioView, proposal: Proposal, expected: str) -> None:
    correlation = Correlation({frozenset(("BTCZAR", "ETHZAR")): 0.95})
    violations, _ = check(LIMITS, view, proposal, correlation)
    assert violations == [expected]


def test_every_violation_is_listed() -> None:
    view = PortfolioView(equity=80_000.0, peak=100_000.0, day_start_equity=90_000.0)
    violations, metrics = check(LIMITS, view, Proposal("BTCZAR", "crypto", 25_000.0, 1.0), unrelated)
    assert [v.split(":")[0] for v in violations] == ["max_drawdown", "daily_loss", "max_position"]
    assert metrics["drawdown"] == pytest.approx(0.2) and metrics["position_share"] == pytest.approx(0.3125)


def test_bdd_adding_to_a_position_beyond_twenty_percent_is_rejected() -> None:
    view = PortfolioView(100_000.0, 100_000.0, 100_000.0, (crypto("BTCZAR", 15_000.0),))
    violations, metrics = check(LIMITS, view, BTC, unrelated)
    assert "max_position: BTCZAR would be 25.00% of equity > 20.00%" in violations
    assert metrics["position_share"] == pytest.approx(0.25)
    # A pair is never compared with itself: only the share is over its limit.
    assert violations == ["max_position: BTCZAR would be 25.00% of equity > 20.00%"]


def test_bdd_a_drawdown_of_fifteen_and_a_half_percent_is_rejected() -> None:
    view = PortfolioView(equity=84_500.0, peak=100_000.0, day_start_equity=85_000.0)
    violations, metrics = check(LIMITS, view, Proposal("BTCZAR", "crypto", 1_000.0, 1.0), unrelated)
    assert violations == ["max_drawdown: drawdown 15.50% >= 15.00%"]
    assert metrics["drawdown"] == pytest.approx(0.155)


def test_bdd_a_trade_within_all_limits_is_approved() -> None:
    # position 12% (< 20%), portfolio leverage 1.3 (< 2.0), drawdown 5% (< 15%), today -1.2% (> -5%)
    equity = 95_000.0
    view = PortfolioView(equity, 100_000.0, equity / 0.988, (crypto("ETHZAR", 40_000.0, 2.8025),))
    proposal = Proposal("BTCZAR", "crypto", 11_400.0, 1.0)
    violations, metrics = check(
        Limits(max_leverage=2.0), view, proposal, Correlation({frozenset(("BTCZAR", "ETHZAR")): 0.8})
    )
    assert violations == []
    assert metrics["position_share"] == pytest.approx(0.12)
    assert metrics["leverage"] == pytest.approx(1.3)
    assert metrics["drawdown"] == pytest.approx(0.05)
    assert metrics["daily_return"] == pytest.approx(-0.012)
    assert metrics["max_correlation"] == pytest.approx(0.8)


def test_unknown_correlations_are_skipped_and_the_highest_known_is_reported() -> None:
    view = PortfolioView(
        100_000.0, 100_000.0, 100_000.0, tuple(crypto(p, 5_000.0) for p in ("ETHZAR", "SOLZAR", "XRPZAR"))
    )
    table = {frozenset(("BTCZAR", "ETHZAR")): 0.95, frozenset(("BTCZAR", "SOLZAR")): 0.97}
    violations, metrics = check(LIMITS, view, BTC, Correlation(table))
    assert violations == ["max_correlation: BTCZAR vs SOLZAR 0.97 > 0.90"]

    nothing_known = Correlation({frozenset(("BTCZAR", "XRPZAR")): math.nan})
    violations, metrics = check(LIMITS, view, BTC, nothing_known)
    assert violations == [] and math.isnan(metrics["max_correlation"])
    assert sorted(nothing_known.asked) == [("BTCZAR", "ETHZAR"), ("BTCZAR", "SOLZAR"), ("BTCZAR", "XRPZAR")]


def test_the_correlation_limit_never_compares_a_pair_with_itself() -> None:
    view = PortfolioView(100_000.0, 100_000.0, 100_000.0, (crypto("BTCZAR", 1_000.0), crypto("BTCZAR", 1_000.0)))
    correlation = Correlation({})
    violations, metrics = check(LIMITS, view, BTC, correlation)
    assert violations == [] and correlation.asked == [] and math.isnan(metrics["max_correlation"])
    assert metrics["position_share"] == pytest.approx(0.12)


def test_the_correlation_limit_reports_another_pair_not_the_proposals_own() -> None:
    view = PortfolioView(100_000.0, 100_000.0, 100_000.0, (crypto("BTCZAR", 1_000.0), crypto("ETHZAR", 1_000.0)))
    correlation = Correlation({frozenset(("BTCZAR", "ETHZAR")): 0.95})
    violations, _ = check(LIMITS, view, BTC, correlation)
    assert violations == ["max_correlation: BTCZAR vs ETHZAR 0.95 > 0.90"]
    assert correlation.asked == [("BTCZAR", "ETHZAR")]


def test_sector_share_counts_only_the_proposals_sector() -> None:
    view = PortfolioView(100_000.0, 100_000.0, 100_000.0, (Exposure("USDZAR", "fx", 55_000.0, 1.0),))
    violations, metrics = check(LIMITS, view, BTC, unrelated)
    assert violations == [] and metrics["sector_share"] == pytest.approx(0.1)


@pytest.mark.parametrize("equity", [0.0, -5.0, math.nan])
def test_no_equity_is_a_violation_without_dividing_by_it(equity: float) -> None:
    view = PortfolioView(equity, peak=0.0, day_start_equity=0.0, open=(crypto("ETHZAR", 1_000.0),))
    violations, metrics = check(LIMITS, view, BTC, unrelated)
    assert violations == [f"equity: {equity:.2f} <= 0"]
    assert all(math.isnan(metrics[k]) for k in ("position_share", "sector_share", "leverage"))
    assert (metrics["drawdown"], metrics["daily_return"]) == (0.0, 0.0)


def test_zero_equity_after_a_peak_also_breaches_drawdown_and_daily_loss() -> None:
    violations, _ = check(LIMITS, PortfolioView(0.0, 100_000.0, 50_000.0), BTC, unrelated)
    assert violations == [
        "equity: 0.00 <= 0",
        "max_drawdown: drawdown 100.00% >= 15.00%",
        "daily_loss: today -100.00% <= -5.00%",
    ]


def test_views_and_positions() -> None:
    assert Exposure("BTCZAR", "crypto", 10_000.0, 2.5).notional == 25_000.0
    view = PortfolioView(equity=110.0, peak=100.0, day_start_equity=100.0)
    assert view.drawdown == pytest.approx(-0.1) and view.daily_return == pytest.approx(0.1)
    for bad in ({"margin": -1.0}, {"margin": math.nan}, {"leverage": 0.5}, {"leverage": math.inf}):
        kwargs = {"pair": "BTCZAR", "sector": "crypto", "margin": 1.0, "leverage": 1.0} | bad
        with pytest.raises(ValueError):
            Proposal(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            Exposure(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_drawdown": 0.0},
        {"daily_loss": 1.5},
        {"max_open_positions": 0},
        {"max_position": -0.2},
        {"max_sector_exposure": math.nan},
        {"max_correlation": 1.1},
        {"max_leverage": 0.9},
    ],
)
def test_limits_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**kwargs)  # type: ignore[arg-type]
