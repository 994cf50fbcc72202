"""Tier 4's audit in the ledger: each decision's approval (`llm_decisions`) with the market
context its approver read (`market_context_snapshots`), written with the decision in
`Ledger.commit`, and the queries behind the ledger's reads of them, each on a connection the
ledger opened (and so in its transaction).

The context, the answer and the clamps are stored as JSON text: the context exactly as the
prompt carried it (its hash is of that text), the answer as the approver's parsed answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, func, select

from helios_core.trading.orders import require_aware
from helios_live.ledger.bulk import Bulk
from helios_live.ledger.models import Base, LlmDecisionRow, MarketContextSnapshotRow
from helios_live.ledger.records import LlmDecisionRecord, PredictionRecord

LLM = "llm"  # the source of an answer a model gave, the only kind a `recorded` approver replays
EXPLANATION_CHARS = 500  # of a position's explanation; the whole answer is at /api/llm/decisions/{id}
# The record's fields that are columns of llm_decisions as they stand (the context has a table of
# its own, the clamps are stored as JSON).
FIELDS = tuple(f.name for f in fields(LlmDecisionRecord) if f.name not in ("context", "clamps", "latency_ms"))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def insert_decisions(bulk: Bulk, records: Sequence[PredictionRecord], ids: Sequence[int | None]) -> None:
    """Store the approval of each decision just inserted (id not None) that has one: its
    context, then its decision row naming that context. One insert per table for all of them."""
    stored: list[tuple[int, PredictionRecord, LlmDecisionRecord]] = []
    for record, row_id in zip(records, ids, strict=True):
        if row_id is not None and record.llm is not None:
            stored.append((row_id, record, record.llm))
    if not stored:
        return
    snapshots = [
        {
            "prediction_id": row_id,
            "pair": record.pair,
            "candle_ts": record.candle_ts,
            "context_hash": llm.context_hash,
            "context": llm.context,
            "created_at": record.decided_at,
        }
        for row_id, record, llm in stored
    ]
    # The decision rows name their context's id: the one statement here whose rows are needed.
    returned = bulk.insert_returning("market_context_snapshots", snapshots, "RETURNING id, prediction_id")
    context_ids = {prediction_id: context_id for context_id, prediction_id in returned}
    bulk.insert(
        "llm_decisions",
        [
            {
                **{name: getattr(llm, name) for name in FIELDS},
                # NaN (SQLite stores it as NULL anyway) is no JSON for the API either.
                "latency_ms": llm.latency_ms if llm.latency_ms is None or math.isfinite(llm.latency_ms) else None,
                "clamps": json.dumps(list(llm.clamps), separators=(",", ":")),
                "prediction_id": row_id,
                "context_id": context_ids[row_id],
                "pair": record.pair,
            }
            for row_id, record, llm in stored
        ],
    )


def decisions_query(
    pair: str | None, verdict: str | None, source: str | None, approver: str | None, failed: bool | None
) -> Select[Any]:
    """Decisions with their candle's open time (from their context); `failed`: with a failure
    (the failure policy decided) or without one."""
    query = select(_table("llm_decisions"), MarketContextSnapshotRow.candle_ts).join(
        MarketContextSnapshotRow, MarketContextSnapshotRow.id == LlmDecisionRow.context_id
    )
    for column, value in (
        (LlmDecisionRow.pair, pair),
        (LlmDecisionRow.verdict, verdict),
        (LlmDecisionRow.source, source),
        (LlmDecisionRow.approver, approver),
    ):
        if value is not None:
            query = query.where(column == value)
    if failed is not None:
        query = query.where(LlmDecisionRow.failure.is_not(None) if failed else LlmDecisionRow.failure.is_(None))
    return query


def decision_item(row: Any) -> dict[str, Any]:
    """A decision row as JSON-ready values: the clamps a list, the answer a dict (or None), the
    context (where selected) a dict."""
    item = dict(row._mapping)
    item["clamps"] = json.loads(item["clamps"])
    item["answer"] = None if item["answer"] is None else json.loads(item["answer"])
    if "context" in item:
        item["context"] = json.loads(item["context"])
    return item


def decision(connection: Connection, decision_id: int) -> dict[str, Any] | None:
    """One decision with its whole context, or None."""
    query = (
        select(_table("llm_decisions"), MarketContextSnapshotRow.candle_ts, MarketContextSnapshotRow.context)
        .join(MarketContextSnapshotRow, MarketContextSnapshotRow.id == LlmDecisionRow.context_id)
        .where(LlmDecisionRow.id == decision_id)
    )
    row = connection.execute(query).first()
    return None if row is None else decision_item(row)


def answers(connection: Connection, model_id: str | None) -> dict[str, str]:
    """Replay key -> answer JSON of the answers a model gave (source "llm"), the latest per key."""
    latest = select(func.max(LlmDecisionRow.id)).where(LlmDecisionRow.source == LLM, LlmDecisionRow.answer.is_not(None))
    if model_id is not None:
        latest = latest.where(LlmDecisionRow.model_id == model_id)
    query = select(LlmDecisionRow.replay_key, LlmDecisionRow.answer).where(
        LlmDecisionRow.id.in_(latest.group_by(LlmDecisionRow.replay_key))
    )
    return {key: answer for key, answer in connection.execute(query) if answer is not None}


def spend(connection: Connection, since: datetime) -> float:
    """The cost of every decision taken at or after `since`, in USD."""
    require_aware("since", since)
    query = select(func.coalesce(func.sum(LlmDecisionRow.cost_usd), 0.0)).where(LlmDecisionRow.decided_at >= since)
    return float(connection.execute(query).scalar_one())


def explanation(answer: str | None, failure: str | None) -> str | None:
    """A decision in a line: its answer's reasons, or why there was no answer; None without either."""
    reasons = (json.loads(answer).get("reasons") or ()) if answer is not None else ()
    text = "; ".join(str(reason) for reason in reasons) or failure
    if text is None:
        return None
    return text if len(text) <= EXPLANATION_CHARS else text[: EXPLANATION_CHARS - 1] + "…"
