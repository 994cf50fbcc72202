"""The walk-forward folds' layout, their aggregate, and the candidate's backtest period."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from helios_dagster.defs.model.backtests import fold_layout, held_out_period, not_comparable
from helios_dagster.defs.model.evidence import (
    CandidateBacktest,
    FoldBacktest,
    PeriodBacktest,
    WalkForward,
    read_candidate_backtest,
    read_walk_forward,
    write,
)
from helios_dagster.defs.model.layout import Layout
from helios_dagster.ml.data import TrainingError
from helios_live.models.registry import Bundle


def period(sharpe: float | None, total_return: float | None, drawdown: float | None, random: bool) -> PeriodBacktest:
    return PeriodBacktest("v", "2022-01-01T00:00:00+00:00", "2022-01-02T00:00:00+00:00", "r.html", sharpe,
                          total_return, drawdown, 3, False, random, 0.5, "s")  # fmt: skip


def test_folds_roll_over_the_end_of_the_dataset() -> None:
    folds = fold_layout(date(2021, 12, 31), date(2022, 1, 31), Layout(folds=2, test_days=3), max_train_days=90)
    assert [(f.train, f.test) for f in folds] == [
        ((date(2021, 12, 31), date(2022, 1, 25)), (date(2022, 1, 26), date(2022, 1, 28))),
        ((date(2022, 1, 3), date(2022, 1, 28)), (date(2022, 1, 29), date(2022, 1, 31))),
    ]
    capped = fold_layout(date(2021, 12, 31), date(2022, 1, 31), Layout(folds=2, test_days=3), max_train_days=10)
    assert capped[0].train == (date(2022, 1, 16), date(2022, 1, 25))  # HELIOS_TRAIN_DAYS, as the candidate
    fixed = fold_layout(date(2021, 12, 31), date(2022, 1, 31), Layout(folds=3, test_days=1, train_days=5), 90)
    assert [f.train[0] for f in fixed] == [date(2022, 1, 24), date(2022, 1, 25), date(2022, 1, 26)]


def test_a_dataset_too_short_for_the_folds_is_refused() -> None:
    with pytest.raises(TrainingError, match="leave 1 days before the first fold to train on, not 5"):
        fold_layout(date(2022, 1, 1), date(2022, 1, 7), Layout(folds=3, test_days=2, train_days=5), 90)
    with pytest.raises(TrainingError, match="leave 0 days"):
        fold_layout(date(2022, 1, 1), date(2022, 1, 6), Layout(folds=3, test_days=2), 90)


def test_the_aggregate_compounds_returns_and_keeps_the_worst_drawdown(tmp_path: Path) -> None:
    folds = (
        FoldBacktest(1, ("2022-01-01", "2022-01-10"), period(1.0, 0.10, 0.05, True)),
        FoldBacktest(2, ("2022-01-04", "2022-01-13"), period(-2.0, -0.05, 0.12, False)),
    )
    evidence = WalkForward(folds, {"preset": "small"}, "2022-01-15")
    aggregate = evidence.aggregate()
    assert aggregate.mean_sharpe == pytest.approx(-0.5) and aggregate.min_sharpe == -2.0
    assert aggregate.total_return == pytest.approx(1.10 * 0.95 - 1)
    assert aggregate.max_drawdown == 0.12 and aggregate.beating_random == 1 and aggregate.trades == 6
    assert read_walk_forward(write(evidence, tmp_path / "wf.json")) == evidence
    undefined = WalkForward((folds[0], FoldBacktest(2, folds[1].train, period(None, None, 0.1, False))), {}, "x")
    assert undefined.aggregate().mean_sharpe is None and undefined.aggregate().total_return is None
    tested = CandidateBacktest(period(1.0, 0.1, 0.05, True), None, "no ACTIVE model to compare with")
    assert read_candidate_backtest(write(tested, tmp_path / "c.json")) == tested


def test_the_backtest_period_decides_exactly_the_test_samples() -> None:
    meta = {"base_timeframe": "5m", "periods": {"test": ["2022-01-27T10:05:00+00:00", "2022-01-31T23:55:00+00:00"]}}
    start, end = held_out_period(Bundle("v", Path("."), meta))
    assert start == datetime(2022, 1, 27, 10, 0, tzinfo=UTC)  # the open of the first test decision's candle
    assert end == datetime(2022, 1, 31, 23, 55, tzinfo=UTC)
    with pytest.raises(TrainingError, match="records no test period"):
        held_out_period(Bundle("old", Path("."), {}))


def test_active_is_compared_only_on_the_same_base_and_feature_set() -> None:
    ours = {"base_timeframe": "1m", "feature_set_version": "1.0.0", "feature_names": ["a"]}
    assert not_comparable(ours, {**ours, "version": "act"}) is None
    assert not_comparable(ours, {**ours, "version": "act", "base_timeframe": "5m"}) == (
        "ACTIVE act decides on 5m candles, the candidate on 1m: not compared"
    )
    assert "feature set 0.9.0" in str(not_comparable(ours, {**ours, "version": "act", "feature_set_version": "0.9.0"}))
