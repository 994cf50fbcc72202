"""The Great Expectations suite catches each broken invariant it claims to."""

import numpy as np
import pandas as pd
import pytest

from helios_core.candles import validate_candles
from helios_core.timeframes import Timeframe
from helios_dagster.quality import candle_suite, validate
from tests.conftest import sample


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return validate_candles(sample("ETH-BTC_5m_2018-01.parquet"), Timeframe.parse("5m"), "eth").head(500)


def test_real_candles_pass(good: pd.DataFrame) -> None:
    assert validate(good, candle_suite()) == []


@pytest.mark.parametrize(
    ("corrupt", "expectation"),
    [
        (
            lambda f: f.assign(high=np.where(f.index == 7, f["low"] / 2, f["high"])),
            "expect_column_pair_values_a_to_be_greater_than_b",
        ),
        (lambda f: f.assign(volume=np.where(f.index == 3, -1.0, f["volume"])), "expect_column_values_to_be_between"),
        (lambda f: pd.concat([f, f.iloc[[10]]], ignore_index=True), "expect_column_values_to_be_unique"),
        (lambda f: f.iloc[::-1].reset_index(drop=True), "expect_column_values_to_be_increasing"),
        (lambda f: f.assign(close=np.where(f.index == 5, np.nan, f["close"])), "expect_column_values_to_not_be_null"),
    ],
)
def test_each_broken_invariant_is_reported(good: pd.DataFrame, corrupt, expectation: str) -> None:  # type: ignore[no-untyped-def]
    failures = validate(corrupt(good.copy()), candle_suite())
    assert expectation in {f.expectation for f in failures}
    assert all(f.unexpected >= 1 for f in failures if f.expectation == expectation)
