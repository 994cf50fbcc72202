"""The decision chain: values, not exceptions; it stops at the first denial and says why; a
step may be async."""

from __future__ import annotations

import asyncio

from helios_core.decision import Approved, Context, Denied, Gate, Prediction, Signal, Step, Verdict, run_chain


def _context(label: str = "BUY", confidence: float = 0.8, **flags: bool) -> Context:
    prediction = Prediction(label, (0.8, 0.1, 0.1), confidence, "0" * 64)
    return Context("BTCZAR", prediction, "v1", 100.0, flags.get("emergency", False), flags.get("auto", True))


class Approve:
    name = "approval"

    def __call__(self, context: Context) -> Verdict:
        return Approved(self.name, "ok")


def _run(steps: list[Step], context: Context) -> list[Verdict]:
    return asyncio.run(run_chain(steps, context))


STEPS: list[Step] = [Signal(0.55), Gate(), Approve()]


def test_a_confident_direction_passes_every_step_when_trading_is_on() -> None:
    verdicts = _run(STEPS, _context())

    assert [v.step for v in verdicts] == ["prediction", "signal", "gate", "approval"]
    assert all(isinstance(v, Approved) for v in verdicts)


def test_hold_and_low_confidence_are_denied_by_the_signal_step() -> None:
    hold = _run(STEPS, _context("HOLD"))
    unsure = _run(STEPS, _context("SELL", 0.5))

    assert hold[-1] == Denied("signal", "model predicts HOLD")
    assert unsure[-1] == Denied("signal", "confidence 0.500 below 0.55")


def test_the_gate_denies_under_an_emergency_stop_or_with_auto_trading_off_before_any_approver_runs() -> None:
    stopped = _run(STEPS, _context(emergency=True))
    off = _run(STEPS, _context(auto=False))

    assert stopped[-1] == Denied("gate", "emergency stop active")
    assert off[-1] == Denied("gate", "auto-trading disabled")
    assert "approval" not in [v.step for v in stopped + off]  # a stopped engine spends no LLM call


def test_an_async_step_is_awaited_and_a_denial_stops_the_chain() -> None:
    class Veto:
        name = "approval"

        async def __call__(self, context: Context) -> Verdict:
            await asyncio.sleep(0)
            return Denied(self.name, "vetoed")

    verdicts = _run([Signal(0.55), Gate(), Veto(), Gate()], _context())

    assert [v.step for v in verdicts] == ["prediction", "signal", "gate", "approval"]
    assert verdicts[-1].reason == "vetoed"
