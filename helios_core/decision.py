"""A decision step's result is a value: `Approved` or `Denied` with its reason, never an exception.

Every step of the live decision chain returns one of these, and every one of them is written
to the ledger, so a trade that did not happen still says why.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Approved:
    step: str
    detail: str = ""

    @property
    def approved(self) -> bool:
        return True

    @property
    def reason(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Denied:
    step: str
    reason: str

    @property
    def approved(self) -> bool:
        return False


Verdict = Approved | Denied
