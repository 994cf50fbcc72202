"""The live service's SQL ledger: every prediction, its decision chain, its outcome, what trading
made of it (sizing, portfolio check, orders, fills, positions), portfolio snapshots, mode changes
and engine events."""

from helios_live.ledger.models import Outcome, Page, PredictionRecord, StepRecord
from helios_live.ledger.records import (
    CheckRecord,
    FillRecord,
    ModeRecord,
    OrderRecord,
    PositionRecord,
    RiskRecord,
    SnapshotRecord,
    TradeRecord,
)
from helios_live.ledger.store import Ledger, LedgerConflict, LedgerError

__all__ = [
    "CheckRecord",
    "FillRecord",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "ModeRecord",
    "OrderRecord",
    "Outcome",
    "Page",
    "PositionRecord",
    "PredictionRecord",
    "RiskRecord",
    "SnapshotRecord",
    "StepRecord",
    "TradeRecord",
]
