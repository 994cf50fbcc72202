"""A replay through the kernel: recorded data, a `TestClock`, the replay client, paper execution
and a ledger of its own, in lockstep, so the same inputs always give the same ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from helios_core.errors import HeliosError
from helios_core.market import Book
from helios_live.backtest.replay import ReplayDataClient
from helios_live.clock import TestClock
from helios_live.data.lake import Lake
from helios_live.data.recorded import Recorded
from helios_live.kernel.kernel import Kernel
from helios_live.ledger import Ledger
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings


class ReplayFailed(HeliosError):
    """The replay cannot run (its ledger is not new) or its ledger is not a full record of it."""


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    candles: int
    predictions: int
    backfilled: int
    opened: int
    closed: int
    errors: dict[str, int]


async def replay(
    settings: HeliosSettings,
    recorded: Recorded,
    *,
    start: float,
    model_version: str,
    books: Mapping[str, Sequence[Book]] | None = None,
    lake: Lake | None = None,
    summary_every_s: float | None = 10.0,
    auto_trading: bool = True,
) -> ReplaySummary:
    """Replay `recorded` from epoch `start` through the kernel with `model_version`, into the
    ledger at `settings.database_url` (migrated first); every configured pair that has data."""
    ledger = Ledger(settings.resolved_database_url)
    ledger.migrate()
    if ledger.predictions(limit=1).items:
        ledger.close()
        raise ReplayFailed(
            f"{ledger.url} holds decisions already: a replay needs a ledger of its own (it would skip"
            " every candle decided there)"
        )
    clock = TestClock(start_s=start)
    client = ReplayDataClient(
        recorded,
        clock,
        start=start,
        books=books,
        summary_every_s=summary_every_s,
        from_trades=settings.live.candles == "trades",
        trades_max_minutes=settings.live.backfill_trades_max_minutes,
    )
    kernel = Kernel(
        settings,
        ledger,
        Registry(settings.models_root),
        clock,
        client,
        lake=lake,
        lockstep=True,
        model_version=model_version,
        health=False,
    )
    try:
        await kernel.start(connect=False)
        if auto_trading:
            await kernel.set_auto_trading(True)
        await client.run(kernel.pairs, kernel.on_event)
        await kernel.drain()
        summary = ReplaySummary(
            candles=sum(s.candles for s in kernel.states.values()),
            predictions=sum(s.predictions for s in kernel.states.values()),
            backfilled=sum(s.backfilled for s in kernel.states.values()),
            opened=kernel.desk.fills["OPEN"],
            closed=kernel.desk.fills.total() - kernel.desk.fills["OPEN"],
            errors=dict(kernel.errors + kernel.desk.errors),
        )
    finally:
        await kernel.close()
        ledger.close()
    if "ledger" in summary.errors:
        raise ReplayFailed(f"the ledger refused writes during the replay: {summary.errors}")
    return summary
