"""Both leakage checks pass the real features and catch deliberately leaking ones."""

import pandas as pd
import pytest

from helios_core.features.batch import block_features
from helios_core.features.leakage import lookahead_check, recursive_check, sample_positions
from helios_core.features.spec import max_warmup
from tests.features_support import M1, one_minute

HISTORY, FUTURE = max_warmup(), 60


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return one_minute().head(6000)


def real(frame: pd.DataFrame) -> pd.DataFrame:
    return block_features(frame, M1)


def peeks_ahead(frame: pd.DataFrame) -> pd.DataFrame:
    out = real(frame)
    out["next_return"] = out["ret_1"].shift(-1)  # the leak: tomorrow's return as a feature today
    return out


def depends_on_start(frame: pd.DataFrame) -> pd.DataFrame:
    out = real(frame)
    out["expanding_mean"] = frame["close"].expanding().mean() / frame["close"]  # depends on where data starts
    return out


@pytest.fixture(scope="module")
def positions(btc: pd.DataFrame) -> list[int]:
    return sample_positions(len(btc), HISTORY, FUTURE, 15)


def test_real_features_pass_both_checks(btc: pd.DataFrame, positions: list[int]) -> None:
    assert lookahead_check(btc, real, positions, HISTORY, FUTURE).passed
    report = recursive_check(btc, real, positions, HISTORY)
    assert report.passed and max(report.worst.values()) < 1e-9


def test_a_shift_minus_one_feature_is_caught_by_both_checks(btc: pd.DataFrame, positions: list[int]) -> None:
    for report in (
        lookahead_check(btc, peeks_ahead, positions, HISTORY, FUTURE),
        recursive_check(btc, peeks_ahead, positions, HISTORY),
    ):
        assert not report.passed
        assert {name for name, _ in report.failures} == {"next_return"}


def test_a_history_dependent_feature_is_caught_by_the_recursive_check(btc: pd.DataFrame, positions: list[int]) -> None:
    assert lookahead_check(btc, depends_on_start, positions, HISTORY, FUTURE).passed  # it does not peek ahead
    report = recursive_check(btc, depends_on_start, positions, HISTORY)
    assert {name for name, _ in report.failures} == {"expanding_mean"}


def test_too_short_a_warm_up_is_caught(btc: pd.DataFrame, positions: list[int]) -> None:
    report = recursive_check(btc, real, positions, history=60)  # well below the EMA warm-ups
    assert not report.passed
    assert {"rsi_14", "macd_signal", "ema_26"} <= {name for name, _ in report.failures}


def test_no_sample_is_no_pass() -> None:
    assert not lookahead_check(one_minute().head(100), real, [], HISTORY, FUTURE).passed
