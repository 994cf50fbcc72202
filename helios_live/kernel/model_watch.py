"""The model the kernel decides with: the registry's ACTIVE one, loaded off the event loop and
swapped between two events when a new one is promoted, or one pinned version (a backtest)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from helios_live.models.inference import Predictor, load
from helios_live.models.registry import Registry, RegistryError

Record = Callable[..., Awaitable[None]]


class ModelWatch:
    def __init__(self, registry: Registry, pinned: str | None, record: Record) -> None:
        self.registry, self.pinned, self.record = registry, pinned, record
        self.predictor: Predictor | None = None
        self._refused: set[str] = set()  # versions that failed to load: tried once, recorded once

    @property
    def version(self) -> str | None:
        return self.predictor.version if self.predictor else None

    async def reload(self) -> bool:
        """Load the version to serve if it changed; whether it did. A pinned version that cannot
        be loaded raises (a backtest without its model is no backtest)."""
        active = self.pinned or await asyncio.to_thread(self.registry.active)
        if active is None or active == self.version or active in self._refused:
            return False
        try:
            predictor = await asyncio.to_thread(load, self.registry, active)
        except (RegistryError, OSError) as exc:
            self._refused.add(active)
            await self.record("MODEL_REFUSED", version=active, reason=str(exc))
            if self.pinned is not None:
                raise
            return False
        previous = self.version
        # Swapped between two events of the event loop: every candle is decided by exactly one model.
        self.predictor = predictor
        await self.record("MODEL_LOADED", version=active, previous=previous, provider=predictor.provider)
        if self.pinned is None and previous is not None:
            rollback = await asyncio.to_thread(rolled_back_to, self.registry, active)
            if rollback is not None:
                await self.record("MODEL_ROLLED_BACK", version=active, previous=previous, reason=rollback)
        return True


def rolled_back_to(registry: Registry, version: str) -> str | None:
    """The reason of the rollback that made `version` ACTIVE, when the registry's latest move of
    its pointer was one (None: a promotion, or a history that cannot be read)."""
    try:
        history = registry.history()
    except (OSError, ValueError):  # the model is loaded either way; only the notice is lost
        return None
    moves = [e for e in history if e.get("action") in ("promote", "rollback")]
    if moves and moves[-1]["action"] == "rollback" and moves[-1].get("version") == version:
        return str(moves[-1].get("reason", "rollback"))
    return None
