"""Tier 4's merge: for any answer the model can send, the final trade is never riskier than the
proposal, and Tier 5 still checks it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.risk.sizing import SizingConfig, size
from helios_live.approval.answer import MAX_LEVERAGE, Answer, AnswerError, parse
from helios_live.approval.merge import merge, riskier

PROPOSAL = size(0.72, 0.03, "LOW", 0.0, SizingConfig())
NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6) | st.just(2.0) | st.just(-1)
TEXT = st.text(max_size=400)


def answer(**fields: object) -> Answer:
    base: dict[str, object] = {
        "decision": "MODIFY",
        "size_multiplier": 0.5,
        "leverage": 1.0,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.04,
        "confidence": 0.6,
        "reasons": ["why"],
    }
    return Answer.model_validate({**base, **fields})


def test_the_proposal_is_a_real_trade() -> None:
    assert PROPOSAL.approved and PROPOSAL.fraction > 0 and PROPOSAL.leverage > 1


# Anything a model could put in the tool's input: valid answers, and dicts of any shape.
raw_answers = st.fixed_dictionaries(
    {
        "decision": st.sampled_from(["APPROVE", "REJECT", "MODIFY", "approve", "BUY", ""]),
        "size_multiplier": NUMBERS,
        "leverage": NUMBERS,
        "stop_loss_pct": NUMBERS,
        "take_profit_pct": NUMBERS,
        "confidence": NUMBERS,
        "reasons": st.lists(TEXT, max_size=7),
    },
    optional={"extra": st.integers(), "position_size_multiplier": NUMBERS},
)


@settings(max_examples=500, deadline=None)
@given(raw=raw_answers, fraction=st.floats(0.001, 0.2), lev=st.floats(1.0, 3.0))
def test_no_answer_makes_the_trade_riskier(raw: dict[str, object], fraction: float, lev: float) -> None:
    proposal = replace(PROPOSAL, fraction=fraction, leverage=lev)
    try:
        parsed = parse(raw)
    except AnswerError:
        return  # a failure: the failure policy decides, and no number of this answer is used
    merged = merge(proposal, parsed)
    assert riskier(merged.sizing, proposal) == []
    assert all(math.isfinite(v) for v in (merged.sizing.fraction, merged.sizing.leverage))
    if parsed.decision == "REJECT" or parsed.size_multiplier == 0:
        assert merged.verdict == "REJECT"


@settings(max_examples=300, deadline=None)
@given(
    multiplier=st.floats(0, 1),
    lev=st.floats(1, MAX_LEVERAGE),
    stop=st.floats(1e-6, 0.5),
    tp=st.floats(1e-6, 1),
)
def test_each_dimension_is_the_lower_of_the_two(multiplier: float, lev: float, stop: float, tp: float) -> None:
    a = answer(size_multiplier=multiplier, leverage=lev, stop_loss_pct=stop, take_profit_pct=tp)
    merged = merge(PROPOSAL, a)
    if merged.verdict == "REJECT":
        assert PROPOSAL.fraction * multiplier == 0  # zero, or so small it underflows to zero
        return
    s = merged.sizing
    assert s.fraction == pytest.approx(PROPOSAL.fraction * multiplier)
    assert s.leverage == min(lev, PROPOSAL.leverage)
    assert s.stop_loss_pct == min(stop, PROPOSAL.stop_loss_pct)
    assert s.take_profit_pct == min(tp, PROPOSAL.take_profit_pct)
    raised = [lev > PROPOSAL.leverage, stop > PROPOSAL.stop_loss_pct, tp > PROPOSAL.take_profit_pct]
    assert len(merged.clamps) == sum(raised)


def test_a_clamp_names_what_was_asked_and_what_stood() -> None:
    merged = merge(PROPOSAL, answer(leverage=10.0, size_multiplier=1.0))
    assert merged.sizing.leverage == PROPOSAL.leverage
    assert merged.clamps == (f"leverage 10 above the proposal's {PROPOSAL.leverage:g}: kept at {PROPOSAL.leverage:g}",)


def test_approve_with_smaller_numbers_gets_the_smaller_trade() -> None:
    merged = merge(PROPOSAL, answer(decision="APPROVE", size_multiplier=0.25, leverage=PROPOSAL.leverage))
    assert merged.verdict == "MODIFY" and merged.sizing.fraction == pytest.approx(PROPOSAL.fraction / 4)
    same = answer(
        decision="APPROVE",
        size_multiplier=1.0,
        leverage=PROPOSAL.leverage,
        stop_loss_pct=PROPOSAL.stop_loss_pct,
        take_profit_pct=PROPOSAL.take_profit_pct,
    )
    assert merge(PROPOSAL, same).verdict == "APPROVE" and merge(PROPOSAL, same).sizing == PROPOSAL


def test_reject_keeps_nothing_to_trade() -> None:
    assert merge(PROPOSAL, answer(decision="REJECT")).verdict == "REJECT"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size_multiplier", 2.0),
        ("size_multiplier", -1),
        ("size_multiplier", float("nan")),
        ("leverage", float("inf")),
        ("leverage", 50),
        ("stop_loss_pct", 0),
        ("decision", "APPROVE_REDUCED"),
        ("size_multiplier", "0.5"),
        ("size_multiplier", True),
    ],
)
def test_out_of_range_or_wrong_typed_values_are_failures(field: str, value: object) -> None:
    raw = answer().model_dump()
    raw[field] = value
    with pytest.raises(AnswerError, match=field):
        parse(raw)


def test_a_missing_or_extra_field_is_a_failure() -> None:
    raw = answer().model_dump()
    with pytest.raises(AnswerError, match="extra"):
        parse({**raw, "extra": 1})
    del raw["reasons"]
    with pytest.raises(AnswerError, match="reasons"):
        parse(raw)
