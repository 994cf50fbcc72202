"""Tier 4's market context: built from the pipeline's numbers only, deterministic, within the
design's 700 tokens for a ten-pair engine; and the rules that approve without a key."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from helios_core.decision import Context, Prediction
from helios_core.market import Book
from helios_core.risk.sizing import SizingConfig, size
from helios_core.trading.account import Account
from helios_live.approval.context import (
    MAX_CHARS,
    MarketContext,
    build,
    change,
    correlation_regime,
    digest,
    liquidity,
    trend,
)
from helios_live.approval.prompt import render
from helios_live.approval.rule_based import RuleBasedApprover, decide
from helios_live.kernel.pair import PairState

NOW = 1_767_225_600.0
STEP = 60
PAIRS = [f"P{i}ZAR" for i in range(10)]


def returns(days: float, per_step: float = 0.0001) -> tuple[np.ndarray, np.ndarray]:
    n = int(days * 288)
    buckets = np.arange(n, dtype=np.int64) * 300 + int(NOW) - n * 300
    return buckets, np.full(n, per_step)


def volume(hours: int, per_candle: float = 1.0, last_hour: float | None = None) -> tuple[float | None, list[float]]:
    """A pair's hourly volumes as its state keeps them, from `hours` hours of 1m candles."""
    state = PairState("P0ZAR", 2.0, 4, step=STEP)
    for i in range(hours * 60):
        v = last_hour if last_hour is not None and i >= (hours - 1) * 60 else per_candle
        state._count_volume(v)
    return state.volume()


def full(label: str = "BUY", notes: tuple[str, ...] = ()) -> MarketContext:
    c = Context(
        "P0ZAR", Prediction(label, (0.7212345, 0.1787655, 0.1), 0.7212345, "h"), "m", 1_234_567.891, False, True
    )
    c.now, c.sizing = NOW, size(0.72, 0.03, "LOW", 0.0, SizingConfig())
    book = Book(
        "P0ZAR",
        NOW,
        tuple((1_234_000.0 - i, 0.5 + i) for i in range(10)),
        tuple((1_235_000.0 + i, 0.4) for i in range(10)),
    )
    account = Account(100_000.0)
    scored = tuple(("BUY", "SELL" if i % 3 else "BUY") for i in range(50))
    correlations = {p: 0.612345 + i / 100 for i, p in enumerate(PAIRS[1:])}
    return build(c, returns(31), 0.031234, "MEDIUM", volume(25), book, account, correlations, scored, notes)


def test_a_ten_pair_context_stays_within_about_700_tokens() -> None:
    text = full().to_json()
    assert len(text) <= MAX_CHARS, len(text)
    data = json.loads(text)
    assert set(data) == {
        "pair",
        "at",
        "market",
        "model",
        "proposal",
        "portfolio",
        "correlations",
        "correlation_regime",
        "notes",
    }
    assert len(data["correlations"]) == 9 and data["market"]["spread_bps"] is not None
    assert len(render(text).user) <= MAX_CHARS + 200


def test_one_state_gives_one_text_and_one_hash() -> None:
    a, b = full(), full()
    assert a.to_json() == b.to_json() and digest(a.to_json()) == digest(b.to_json())
    assert digest(full(notes=("x",)).to_json()) != digest(a.to_json())
    assert json.loads(a.to_json())["model"]["p_buy"] == 0.7212  # rounded to what a decision needs


def test_price_changes_come_from_the_pairs_returns() -> None:
    b, v = returns(31, 0.001)
    assert change(b, v, NOW, 86_400) == pytest.approx(math.expm1(0.288), rel=1e-9)
    assert change(*returns(2), NOW, 7 * 86_400) is None  # history too short: unknown, never zero


def test_regimes() -> None:
    assert trend(0.2, 0.02) == "BULLISH" and trend(-0.2, 0.02) == "BEARISH" and trend(0.01, 0.02) == "SIDEWAYS"
    assert trend(None, 0.02) == "SIDEWAYS"
    assert correlation_regime([0.9, 0.85]) == "CRISIS" and correlation_regime([0.6]) == "COUPLED"
    assert correlation_regime([0.1]) == "DECOUPLED" and correlation_regime([]) == "DECOUPLED"
    assert liquidity(*volume(25, 1.0, 0.1))[0] == "THIN"
    assert liquidity(*volume(25, 1.0, 5.0))[0] == "DEEP"
    assert liquidity(*volume(25)) == ("NORMAL", 1.0)
    assert liquidity(*volume(1)) == ("NORMAL", None)  # no earlier hour to compare with
    assert volume(0) == (None, [])


def test_the_rules_reject_extreme_volatility_and_shrink_against_the_trend() -> None:
    context = full()
    assert decide(context).reasons[-1] == "the model's hit rate 34% is poor: half size"
    context = replace(context, model=replace(context.model, hit_rate=0.6))
    assert decide(replace(context, market=replace(context.market, volatility="EXTREME"))).decision == "REJECT"
    bearish = decide(replace(context, market=replace(context.market, trend="BEARISH", volatility="LOW")))
    assert bearish.decision == "MODIFY" and bearish.size_multiplier == 0.5
    high = decide(replace(context, market=replace(context.market, trend="SIDEWAYS", volatility="HIGH")))
    assert high.size_multiplier == 0.5 and high.leverage == 1.0
    calm = replace(context, market=replace(context.market, trend="SIDEWAYS", volatility="LOW", liquidity="NORMAL"))
    assert decide(calm).decision == "APPROVE"
    reply = asyncio.run(RuleBasedApprover().ask(render(calm.to_json()), calm, NOW))
    assert reply.answer is not None and reply.source == "rules" and reply.cost_usd == 0
