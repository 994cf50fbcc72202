"""What the gate reads: backtests of models on periods, and the walk-forward folds, as typed
records kept as JSON beside their reports."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from helios_live.backtest.run import BacktestResult


@dataclass(frozen=True)
class PeriodBacktest:
    """One model's backtest over [start, end): the figures the gate reads and its report."""

    version: str
    start: str  # UTC, ISO
    end: str
    report: str  # report.html
    sharpe: float | None  # None where undefined (no trades, a flat curve)
    total_return: float | None
    max_drawdown: float | None
    trades: int
    beats_buy_and_hold: bool
    beats_random: bool
    random_rank: float | None  # share of random-entry draws the model's Sharpe beats
    summary: str  # the report's verdict sentence

    @classmethod
    def of(cls, version: str, result: BacktestResult) -> PeriodBacktest:
        report = result.report
        overall, verdict = report["metrics"]["overall"], report["verdict"]
        return cls(
            version=version,
            start=str(report["start"]),
            end=str(report["end"]),
            report=str(result.html),
            sharpe=_number(overall["sharpe"]),
            total_return=_number(overall["total_return"]),
            max_drawdown=_number(overall["max_drawdown"]),
            trades=int(overall["trades"] or 0),
            beats_buy_and_hold=bool(verdict["beats_buy_and_hold"]),
            beats_random=bool(verdict["beats_random"]),
            random_rank=_number(report["baselines"]["random_entry"]["model_sharpe_rank"]),
            summary=str(verdict["summary"]),
        )


@dataclass(frozen=True)
class FoldBacktest:
    """A walk-forward fold: a model trained on the days `train`, backtested on the days after."""

    fold: int
    train: tuple[str, str]  # first and last day, inclusive
    backtest: PeriodBacktest


@dataclass(frozen=True)
class Aggregate:
    """The folds together: a figure is None when a fold's is undefined."""

    folds: int
    mean_sharpe: float | None
    min_sharpe: float | None
    total_return: float | None  # compounded across the folds' periods
    max_drawdown: float | None  # the worst fold's
    beating_random: int  # folds whose Sharpe beats 95 % of their random-entry draws
    trades: int


@dataclass(frozen=True)
class WalkForward:
    """Rolling folds of one training set-up (`identity`) on a dataset ending `dataset_last_day`."""

    folds: tuple[FoldBacktest, ...]
    identity: dict[str, Any]
    dataset_last_day: str

    def aggregate(self) -> Aggregate:
        tests = [f.backtest for f in self.folds]
        sharpes = [t.sharpe for t in tests]
        returns = [t.total_return for t in tests]
        drawdowns = [t.max_drawdown for t in tests]
        defined = bool(tests) and all(s is not None for s in sharpes)
        growth = math.prod(1.0 + r for r in returns if r is not None)
        return Aggregate(
            folds=len(tests),
            mean_sharpe=sum(s for s in sharpes if s is not None) / len(tests) if defined else None,
            min_sharpe=min(s for s in sharpes if s is not None) if defined else None,
            total_return=growth - 1.0 if tests and None not in returns else None,
            max_drawdown=max(d for d in drawdowns if d is not None) if tests and None not in drawdowns else None,
            beating_random=sum(t.beats_random for t in tests),
            trades=sum(t.trades for t in tests),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WalkForward:
        folds = tuple(
            FoldBacktest(int(f["fold"]), (f["train"][0], f["train"][1]), PeriodBacktest(**f["backtest"]))
            for f in data["folds"]
        )
        return cls(folds, dict(data["identity"]), str(data["dataset_last_day"]))


@dataclass(frozen=True)
class CandidateBacktest:
    """The candidate on its held-out test period, and ACTIVE on the same period when the two
    can be compared (`skipped` says why not)."""

    candidate: PeriodBacktest
    active: PeriodBacktest | None
    skipped: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CandidateBacktest:
        active = data.get("active")
        return cls(PeriodBacktest(**data["candidate"]), PeriodBacktest(**active) if active else None, data["skipped"])


def write(record: WalkForward | CandidateBacktest, path: Path) -> Path:
    """Write `record` as JSON (figures undefined as null) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=1, allow_nan=False) + "\n")
    return path


def read_walk_forward(path: Path) -> WalkForward:
    return WalkForward.from_json(json.loads(path.read_text()))


def read_candidate_backtest(path: Path) -> CandidateBacktest:
    return CandidateBacktest.from_json(json.loads(path.read_text()))


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
