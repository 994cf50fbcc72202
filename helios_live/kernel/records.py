"""A decision as the ledger and the event stream see it."""

from __future__ import annotations

from typing import Any

from helios_core.decision import Context, Verdict
from helios_core.features.spec import FEATURE_SET_VERSION
from helios_core.features.streaming import Bar
from helios_core.timeframes import as_datetime
from helios_live.ledger import PredictionRecord, StepRecord
from helios_live.ledger.records import LlmDecisionRecord
from helios_live.models.inference import Predictor


def decision_record(bar: Bar, predictor: Predictor, context: Context, verdicts: list[Verdict]) -> PredictionRecord:
    """The decision on `bar` (a candle of the model's base timeframe) with everything its steps
    left on `context`."""
    prediction, close = context.prediction, bar.ts + predictor.step
    return PredictionRecord(
        pair=context.pair,
        candle_ts=as_datetime(bar.ts),
        decided_at=as_datetime(close),
        model_version=predictor.version,
        feature_set_version=FEATURE_SET_VERSION,
        feature_hash=prediction.feature_hash,
        prediction=prediction.label,
        p_buy=prediction.probabilities[0],
        p_sell=prediction.probabilities[1],
        p_hold=prediction.probabilities[2],
        confidence=prediction.confidence,
        entry_price=bar.close,
        outcome_due=as_datetime(close + predictor.horizon_s),
        latency_ms=None,
        steps=tuple(StepRecord(v.step, v.approved, v.reason) for v in verdicts),
        risk=context.risk,
        check=context.check,
        execution=context.execution,
        llm=context.approval if isinstance(context.approval, LlmDecisionRecord) else None,
    )


def public(record: PredictionRecord) -> dict[str, Any]:
    """A decision as the event stream publishes it."""
    return {
        "pair": record.pair,
        "candle_ts": record.candle_ts.isoformat(),
        "model_version": record.model_version,
        "prediction": record.prediction,
        "probabilities": {"BUY": record.p_buy, "SELL": record.p_sell, "HOLD": record.p_hold},
        "confidence": record.confidence,
        "entry_price": record.entry_price,
        "steps": [{"step": s.step, "approved": s.approved, "reason": s.reason} for s in record.steps],
        "approval": None
        if record.llm is None
        else {"verdict": record.llm.verdict, "source": record.llm.source, "failure": record.llm.failure},
    }
