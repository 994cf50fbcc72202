"""Great Expectations suites, defined in code, and one runner for any frame.

Suites: candles (market data), features (every value within its documented bounds) and
labels / training dataset (label codes, time order).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from helios_core.features.spec import SPECS, vector_names


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold, with how many rows broke it and the first few."""

    expectation: str
    column: str
    unexpected: int
    examples: list[Any]


@cache
def _gx() -> tuple[Any, Any]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a closed network
    import great_expectations as gx  # a 4 s import, paid only by runs that validate

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("helios")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
    )
    return gx, (context, batch)


def _suite(name: str, build: Callable[[Any], list[Any]]) -> Any:
    gx, (context, _) = _gx()
    suite = gx.ExpectationSuite(name=name)
    for expectation in build(gx.expectations):
        suite.add_expectation(expectation)
    return context.suites.add(suite)


@cache
def candle_suite() -> Any:
    def build(expect: Any) -> list[Any]:
        rules = [
            expect.ExpectColumnValuesToNotBeNull(column=c) for c in ("ts", "open", "high", "low", "close", "volume")
        ]
        rules += [
            expect.ExpectColumnValuesToBeUnique(column="ts"),
            expect.ExpectColumnValuesToBeIncreasing(column="ts", strictly=True),
            expect.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        ]
        for upper, lower in (("open", "low"), ("close", "low"), ("high", "open"), ("high", "close")):
            rules.append(expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A=upper, column_B=lower, or_equal=True))
        return rules

    return _suite("helios_candles", build)


@cache
def feature_suite() -> Any:
    def build(expect: Any) -> list[Any]:
        rules = [
            expect.ExpectColumnValuesToBeUnique(column="ts"),
            expect.ExpectColumnValuesToBeIncreasing(column="ts", strictly=True),
        ]
        bounds = {spec.name: spec.bounds for spec in SPECS}
        for column in vector_names():
            low, high = bounds[column.split(".", 1)[1]]
            # Nulls (invalid features) are skipped by GX; +/-inf is outside any finite bound.
            rules.append(
                expect.ExpectColumnValuesToBeBetween(
                    column=column, min_value=low, max_value=high if math.isfinite(high) else 1e300
                )
            )
        return rules

    return _suite("helios_features", build)


@cache
def label_suite() -> Any:
    def build(expect: Any) -> list[Any]:
        return [
            expect.ExpectColumnValuesToBeUnique(column="ts"),
            expect.ExpectColumnValuesToBeIncreasing(column="ts", strictly=True),
            expect.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1, 2]),
            expect.ExpectColumnValuesToBeInSet(column="barrier_label", value_set=[0, 1, 2]),
            expect.ExpectColumnValuesToBeBetween(column="fwd_return", min_value=-1.0, max_value=100.0),
            expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A="label_end", column_B="t"),
        ]

    return _suite("helios_labels", build)


def validate(frame: pd.DataFrame, suite: Any) -> list[Failure]:
    """Run a suite on a frame; an empty list means every expectation held."""
    if frame.empty:
        return []
    _, (_, batch_definition) = _gx()
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = []
    for outcome in result.results:
        if not outcome.success:
            config = outcome.expectation_config
            kwargs = config.kwargs
            column = kwargs.get("column") or f"{kwargs.get('column_A')}>={kwargs.get('column_B')}"
            detail = outcome.result or {}
            examples = list(detail.get("partial_unexpected_list") or [])[:3]
            failures.append(Failure(config.type, str(column), int(detail.get("unexpected_count") or 0), examples))
    return failures
