"""The candle expectation suite (Great Expectations, defined in code) and its runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

SUITE_NAME = "helios_candles"


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold, with how many rows broke it and the first few."""

    expectation: str
    column: str
    unexpected: int
    examples: list[Any]


@cache
def _suite() -> tuple[Any, Any]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a closed network
    import great_expectations as gx  # a 4 s import, paid only by runs that validate

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("helios")
        .add_dataframe_asset("candles")
        .add_batch_definition_whole_dataframe("frame")
    )
    expect = gx.expectations
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for column in ("ts", "open", "high", "low", "close", "volume"):
        suite.add_expectation(expect.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(expect.ExpectColumnValuesToBeUnique(column="ts"))
    suite.add_expectation(expect.ExpectColumnValuesToBeIncreasing(column="ts", strictly=True))
    for upper, lower in (("open", "low"), ("close", "low"), ("high", "open"), ("high", "close")):
        suite.add_expectation(
            expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A=upper, column_B=lower, or_equal=True)
        )
    suite.add_expectation(expect.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    return batch, context.suites.add(suite)


def validate_candles_gx(frame: pd.DataFrame) -> list[Failure]:
    """Run the suite on one candle frame; an empty list means every expectation held."""
    if frame.empty:
        return []
    batch_definition, suite = _suite()
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = []
    for outcome in result.results:
        if not outcome.success:
            config = outcome.expectation_config
            kwargs = config.kwargs
            column = kwargs.get("column") or f"{kwargs.get('column_A')}>={kwargs.get('column_B')}"
            detail = outcome.result or {}
            failures.append(
                Failure(
                    config.type,
                    str(column),
                    int(detail.get("unexpected_count") or 0),
                    list(detail.get("partial_unexpected_list") or [])[:3],
                )
            )
    return failures
