"""The live service's SQL ledger: every prediction, its decision chain, its outcome, what trading
made of it (sizing, portfolio check, orders, fills, positions), portfolio snapshots, mode changes
and engine events. It maps the trading domain's objects to rows; it is not the domain model."""

from helios_live.ledger.records import ModeRecord, Outcome, Page, PredictionRecord, StepRecord
from helios_live.ledger.store import Ledger, LedgerConflict, LedgerError

__all__ = ["Ledger", "LedgerConflict", "LedgerError", "ModeRecord", "Outcome", "Page", "PredictionRecord", "StepRecord"]
