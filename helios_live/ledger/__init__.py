"""The live service's SQL ledger: every prediction, its decision chain, its outcome and engine events."""

from helios_live.ledger.models import Outcome, Page, PredictionRecord, StepRecord
from helios_live.ledger.store import Ledger, LedgerError

__all__ = ["Ledger", "LedgerError", "Outcome", "Page", "PredictionRecord", "StepRecord"]
