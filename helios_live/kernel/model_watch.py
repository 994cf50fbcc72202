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
        return True
