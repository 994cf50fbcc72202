"""What the kernel asks of a venue (SHADOW and LIVE trading), and the venue of a kernel that
has none: the builder of `helios live serve` wires VALR in (`kernel.valr`); a backtest, a
replay or a test without one trades PAPER only, and is told so when it asks for more.
"""

from __future__ import annotations

from typing import Any, Protocol

from helios_core.trading.enums import TradingMode
from helios_live.clock import Clock
from helios_live.kernel.supervisor import Supervisor
from helios_live.trading.desk import ModeError


class Venue(Protocol):
    block: str  # why entries are blocked, "" when they are not

    def blocking(self) -> str: ...

    def snapshot(self) -> dict[str, Any] | None: ...

    async def enter(self, mode: TradingMode) -> None: ...

    async def start(self, mode: TradingMode, supervisor: Supervisor, ops: Clock) -> None: ...

    async def reconcile(self) -> dict[str, Any]: ...

    async def acknowledge(self, rec_id: int, by: str, note: str, now: float) -> bool: ...

    async def cancel_all(self) -> int: ...

    async def close(self) -> None: ...


class NoVenue:
    block = ""

    def blocking(self) -> str:
        return self.block

    def snapshot(self) -> dict[str, Any] | None:
        return None

    async def enter(self, mode: TradingMode) -> None:
        if mode is not TradingMode.PAPER:
            raise ModeError(f"{mode} needs a venue: this engine was built without one (PAPER only)")

    async def start(self, mode: TradingMode, supervisor: Supervisor, ops: Clock) -> None:
        return None

    async def reconcile(self) -> dict[str, Any]:
        raise ModeError("reconciliation needs a venue: this engine was built without one")

    async def acknowledge(self, rec_id: int, by: str, note: str, now: float) -> bool:
        return False

    async def cancel_all(self) -> int:
        return 0

    async def close(self) -> None:
        return None
