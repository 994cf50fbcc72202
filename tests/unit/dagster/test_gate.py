"""The promotion gate on hand-built bundles and evidence: each rule can refuse on its own."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from helios_dagster.defs.model.evidence import CandidateBacktest, FoldBacktest, PeriodBacktest, WalkForward
from helios_dagster.defs.model.gate import gate, read_decision
from helios_dagster.defs.model.training import training_identity
from helios_live.models.registry import Bundle
from helios_live.settings import HeliosSettings

DEFAULTS = HeliosSettings()


def meta(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": "candidate",
        "preset": "small",
        "window": 16,
        "base_timeframe": "1m",
        "pairs": ["BTCPERP"],
        "label": {"timeframe": "1h", "candles": 1, "up": 0.02, "down": 0.02},
        "feature_set_version": "1.0.0",
        "train_config": {"max_epochs": 4, "folds": 2, "seed": 7},
        "training_window": {"first_day": "2022-01-01", "last_day": "2022-01-31"},
        "checks": {"onnx_parity": True, "leakage": True},
        "metrics": {
            "test": {
                "model": {"balanced_accuracy": 0.52, "macro_f1": 0.34, "ece": 0.04},
                "baselines": {
                    "majority": {"balanced_accuracy": 0.333, "macro_f1": 0.331},
                    "logistic_regression": {"balanced_accuracy": 0.45, "macro_f1": 0.29},
                },
            }
        },
    }
    out.update(changes)
    return out


def period(
    version: str = "cand", sharpe: float | None = 1.5, drawdown: float | None = 0.05, **rest: Any
) -> PeriodBacktest:
    fields: dict[str, Any] = {
        "start": "2022-01-26T00:00:00+00:00",
        "end": "2022-01-31T00:00:00+00:00",
        "report": "report.html",
        "total_return": 0.01,
        "trades": 12,
        "beats_buy_and_hold": True,
        "beats_random": True,
        "random_rank": 0.97,
        "summary": "The model beats both baselines on Sharpe.",
    } | rest
    return PeriodBacktest(version=version, sharpe=sharpe, max_drawdown=drawdown, **fields)


def walk(folds: list[PeriodBacktest], of: dict[str, Any] | None = None, last_day: str = "2022-01-31") -> WalkForward:
    return WalkForward(
        tuple(FoldBacktest(k, ("2022-01-01", "2022-01-25"), f) for k, f in enumerate(folds, start=1)),
        training_identity(of or meta()),
        last_day,
    )


GOOD_WALK = walk([period("f1"), period("f2")])
ALONE = CandidateBacktest(period(), None, "no ACTIVE model to compare with")


def judge(
    m: dict[str, Any], w: WalkForward | None = GOOD_WALK, b: CandidateBacktest | None = ALONE, settings: Any = DEFAULTS
):
    return gate(Bundle("cand", Path("."), m), cast(HeliosSettings, settings), w, b)


def test_a_candidate_with_all_the_evidence_passes_and_every_number_is_kept() -> None:
    decision = judge(meta())
    assert decision.promote and decision.reasons == ()
    assert decision.notes == ("not compared with ACTIVE: no ACTIVE model to compare with",)
    figures = decision.figures
    assert figures["classification"]["best_baseline"]["balanced_accuracy"] == {
        "baseline": "logistic_regression", "value": 0.45, "model": 0.52,
    }  # fmt: skip
    assert figures["classification"]["best_baseline"]["macro_f1"]["baseline"] == "majority"
    assert figures["walk_forward"]["aggregate"]["mean_sharpe"] == 1.5
    assert figures["walk_forward"]["aggregate"]["beating_random"] == 2
    assert figures["test_period"]["candidate"]["sharpe"] == 1.5
    assert figures["thresholds"] == {
        "min_balanced_accuracy": 0.4,
        "max_ece": 0.15,
        "min_sharpe": 0.0,
        "max_drawdown": 0.25,
    }


def test_a_candidate_that_loses_to_a_baseline_classifier_is_refused() -> None:
    test = meta()["metrics"]["test"]
    test["baselines"]["logistic_regression"]["balanced_accuracy"] = 0.53
    decision = judge(meta(metrics={"test": test}))
    assert not decision.promote
    assert decision.reasons == ("balanced accuracy 0.520 does not beat the logistic_regression baseline's 0.530",)
    test["baselines"]["logistic_regression"]["balanced_accuracy"] = 0.45
    test["baselines"]["majority"]["macro_f1"] = 0.34  # a tie is not a win
    assert judge(meta(metrics={"test": test})).reasons == (
        "macro f1 0.340 does not beat the majority baseline's 0.340",
    )
    no_baselines = {"test": {"model": test["model"]}}
    assert judge(meta(metrics=no_baselines)).reasons == ("no baseline classifiers on the test period to compare with",)


def test_a_walk_forward_fold_model_is_never_promoted() -> None:
    fold_meta = meta(role="walk-forward")
    decision = judge(fold_meta, walk([period("f1"), period("f2")], of=fold_meta))
    assert not decision.promote
    assert decision.reasons == ("a walk-forward fold's model is evidence, never promoted",)


def test_failed_checks_and_the_old_thresholds_still_refuse() -> None:
    test = meta()["metrics"]["test"]
    test["model"] = {"balanced_accuracy": 0.39, "macro_f1": 0.34, "ece": 0.2}
    test["baselines"]["logistic_regression"]["balanced_accuracy"] = 0.35
    decision = judge(meta(checks={"onnx_parity": False, "leakage": True}, metrics={"test": test}))
    assert decision.reasons == ("onnx_parity check failed", "balanced accuracy 0.390 < 0.4", "ECE 0.200 > 0.15")


@pytest.mark.parametrize(
    ("folds", "reason"),
    [
        ([period("f1", sharpe=-0.5), period("f2", sharpe=0.3)], "walk-forward mean Sharpe -0.10 < 0.0"),
        ([period("f1", drawdown=0.30), period("f2")], "walk-forward max drawdown 30.0% > 25%"),
        ([period("f1", sharpe=None), period("f2")], "walk-forward Sharpe undefined in fold(s) [1]"),
        ([period("f1"), period("f2", beats_random=False)], "1 of 2 walk-forward folds beat random entry (a majority"),
    ],
)  # fmt: skip
def test_a_walk_forward_that_misses_a_threshold_or_random_entry_is_refused(
    folds: list[PeriodBacktest], reason: str
) -> None:
    decision = judge(meta(), walk(folds))
    assert not decision.promote and len(decision.reasons) == 1 and decision.reasons[0].startswith(reason)


def test_a_majority_of_folds_beating_random_is_enough() -> None:
    folds = [period("f1"), period("f2", beats_random=False), period("f3")]
    assert judge(meta(), walk(folds)).promote


def test_the_sharpe_and_drawdown_thresholds_are_configuration() -> None:
    strict = SimpleNamespace(
        gate=SimpleNamespace(min_balanced_accuracy=0.4, max_ece=0.15, min_sharpe=2.0, max_drawdown=0.01)
    )
    decision = judge(meta(), settings=strict)
    assert decision.reasons == ("walk-forward mean Sharpe 1.50 < 2.0", "walk-forward max drawdown 5.0% > 1%")


def test_missing_or_foreign_evidence_is_refused() -> None:
    assert judge(meta(), w=None).reasons == ("no walk-forward backtest",)
    assert judge(meta(), b=None).reasons == ("no backtest of the candidate on its test period",)
    other = CandidateBacktest(period("someone-else"), None, "no ACTIVE model to compare with")
    assert judge(meta(), b=other).reasons == ("no backtest of the candidate on its test period",)
    longer = walk([period("f1"), period("f2")], of=meta(train_config={"max_epochs": 20, "folds": 2, "seed": 7}))
    assert judge(meta(), w=longer).reasons == (
        "the walk-forward folds were trained with another set-up than the candidate",
    )
    stale = walk([period("f1"), period("f2")], last_day="2022-01-20")
    assert judge(meta(), w=stale).reasons == (
        "the walk-forward ran on data until 2022-01-20, the candidate's until 2022-01-31",
    )


def test_a_candidate_worse_than_active_on_the_same_period_is_refused() -> None:
    worse = CandidateBacktest(period(sharpe=1.0), period("act", sharpe=2.0), None)
    decision = judge(meta(), b=worse)
    assert decision.reasons == ("Sharpe 1.00 on the test period is worse than ACTIVE act's 2.00",)
    assert decision.figures["test_period"]["active"]["sharpe"] == 2.0
    undefined = CandidateBacktest(period(sharpe=None), period("act", sharpe=-1.0), None)
    assert judge(meta(), b=undefined).reasons == (
        "Sharpe undefined on the test period is worse than ACTIVE act's -1.00",
    )
    level = CandidateBacktest(period(sharpe=2.0), period("act", sharpe=2.0), None)
    assert judge(meta(), b=level).promote  # not worse is enough


def test_an_active_model_that_cannot_be_compared_is_a_recorded_note() -> None:
    skipped = CandidateBacktest(period(), None, "ACTIVE act decides on 5m candles, the candidate on 1m: not compared")
    decision = judge(meta(), b=skipped)
    assert decision.promote
    assert decision.notes == (
        "not compared with ACTIVE: ACTIVE act decides on 5m candles, the candidate on 1m: not compared",
    )
    assert decision.figures["test_period"]["skipped"].startswith("ACTIVE act decides on 5m")


def test_the_decision_is_written_beside_the_bundle(tmp_path: Path) -> None:
    decision = judge(meta(), walk([period("f1", sharpe=None), replace(period("f2"), beats_random=False)]))
    decision.write(tmp_path)
    stored = read_decision(tmp_path)
    assert stored is not None and stored["promote"] is False and list(decision.reasons) == stored["reasons"]
    assert stored["figures"]["walk_forward"]["folds"][0]["backtest"]["sharpe"] is None
    assert read_decision(tmp_path / "elsewhere") is None
