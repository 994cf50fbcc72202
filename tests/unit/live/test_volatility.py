"""Per-pair volatility in the engine: 5m returns from closed 1m candles, gaps not bridged, and a
refit that lands after new returns replays them through the new model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helios_core.features.streaming import Bar
from helios_core.risk.garch import VarianceState, fit
from helios_live.trading.volatility import PairVolatility, correlation

T0 = 1_700_000_100  # a 5-minute boundary


def _bar(ts: int, close: float) -> Bar:
    return Bar(ts, close, close, close, close, 1.0)


def _feed(vol: PairVolatility, closes: list[float], start: int = T0) -> list[float | None]:
    return [vol.on_bar(_bar(start + 60 * i, c)) for i, c in enumerate(closes)]


def test_each_completed_five_minute_bucket_gives_one_log_return_of_its_closes() -> None:
    vol = PairVolatility(window=100)
    out = _feed(vol, [100.0] * 5 + [101.0] * 4 + [103.0] + [99.0] * 5)

    returns = [r for r in out if r is not None]
    assert returns == pytest.approx([math.log(103.0 / 100.0), math.log(99.0 / 103.0)])
    assert vol.total == 2 and out[9] is not None  # the bucket's last minute closes it at once


def test_a_gap_between_buckets_is_not_bridged_by_a_return() -> None:
    vol = PairVolatility(window=100)
    _feed(vol, [100.0] * 5)
    later = _feed(vol, [120.0] * 5, start=T0 + 3 * 300)  # two buckets missing

    assert all(r is None for r in later) and vol.total == 0


def test_returns_that_arrive_during_a_fit_are_replayed_through_the_new_model() -> None:
    rng = np.random.default_rng(7)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 5 * 400))))
    vol = PairVolatility(window=10_000)
    _feed(vol, closes[: 5 * 300])
    returns, seen = vol.fit_input()
    model = fit(returns, 300)
    _feed(vol, closes[5 * 300 :], start=T0 + 300 * 300)  # while the fit "runs"
    vol.install(model, seen)

    expected = VarianceState.from_model(model)
    for _, r in list(vol.returns)[seen:]:
        expected.update(r)
    assert vol.total == 399 and vol.state is not None
    assert vol.state.variance == pytest.approx(expected.variance, rel=1e-12)
    assert vol.regime in ("LOW", "MEDIUM", "HIGH", "EXTREME") and vol.daily_vol > 0
    before = vol.state.variance
    _feed(vol, [closes[-1] * 1.05] * 5, start=T0 + 300 * 400)  # a new return moves the variance
    assert vol.state.variance != before


def test_correlation_needs_enough_shared_buckets() -> None:
    rng = np.random.default_rng(3)
    a, b = PairVolatility(10_000), PairVolatility(10_000)
    path = list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 5 * 150))))
    _feed(a, path)
    _feed(b, [p * 2 for p in path])

    assert correlation(a, b) == pytest.approx(1.0)
    assert correlation(a, b, min_overlap=1000) is None
    assert math.isnan(PairVolatility(10).daily_vol) and PairVolatility(10).regime == "EXTREME"
