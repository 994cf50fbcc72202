"""What makes the engine unhealthy, each check with the reason it fails (docs/live.md, "Health").

A check passes with an empty reason. The engine's own checks are here; the API adds whether the
ledger answers a read. Ages are on the engine's clock (a replaying exchange's time, or the
machine's), the ledger's waits on the ops clock.
"""

from __future__ import annotations

import math
from typing import Protocol

from helios_live.clock import Clock
from helios_live.data.client import DataClient
from helios_live.kernel.pair import PairState
from helios_live.ledger.writer import LedgerWriter
from helios_live.models.inference import Predictor
from helios_live.settings import HeliosSettings

STREAM_SILENT_S = 60.0  # VALR answers our PING every 20 s: a minute of silence is a dead stream
STREAM_BEHIND_S = 60.0  # events this much older than the clock: the stream is replaying the past
LEDGER_WAIT_S = 30.0  # a write handed over this long ago and not done: the writes are backing up
LEDGER_QUEUED = 1_000


class Watched(Protocol):
    clock: Clock
    ops_clock: Clock
    client: DataClient
    ledger_writer: LedgerWriter
    settings: HeliosSettings
    states: dict[str, PairState]
    status: str
    started_at: float | None
    stream_lag: float | None

    @property
    def predictor(self) -> Predictor | None: ...


def checks(kernel: Watched) -> dict[str, str]:
    return {
        "engine_running": "" if kernel.status == "RUNNING" else f"engine is {kernel.status}",
        "stream_alive": _stream(kernel),
        "stream_current": _current(kernel),
        "model_loaded": "" if kernel.predictor is not None else "no model loaded (none ACTIVE in the registry?)",
        "ledger_writes": _writes(kernel.ledger_writer),
        "ledger_backlog": _backlog(kernel),
        "candles_fresh": _candles(kernel),
    }


def _stream(kernel: Watched) -> str:
    silent = kernel.client.silent_s()
    if not kernel.client.stats.connected:
        return "stream not connected"
    if silent is None or silent >= STREAM_SILENT_S:
        return f"stream silent for {'ever' if silent is None else f'{silent:.0f} s'}"
    return ""


def _current(kernel: Watched) -> str:
    lag = kernel.stream_lag
    if lag is not None and lag > STREAM_BEHIND_S:
        return f"the stream's latest event is {lag:.0f} s older than the clock: it is replaying the past"
    return ""


def _writes(writer: LedgerWriter) -> str:
    health = writer.health
    if not health.failing:
        return ""
    return f"{health.failing} ledger write(s) failed in a row, the latest: {health.error}"


def _backlog(kernel: Watched) -> str:
    queued, since = kernel.ledger_writer.backlog()
    waited = kernel.ops_clock.timestamp() - since if since is not None else 0.0
    if waited > LEDGER_WAIT_S or queued > LEDGER_QUEUED:
        return f"{queued} ledger write(s) queued, the oldest waiting {waited:.0f} s"
    return ""


def _candles(kernel: Watched) -> str:
    if kernel.status != "RUNNING":
        return ""
    now = kernel.clock.timestamp()
    if math.isnan(now):
        return ""
    # A candle without a trade does not exist: a quiet pair may go minutes without one. Between
    # two closes a pair's last candle ages by a whole candle, so the limit is at least two of
    # its base candles (600 s for a 5m base), whatever the setting says.
    limit = kernel.settings.live.max_candle_age_s
    bound, stale = limit, []
    for pair, state in kernel.states.items():
        bound = max(limit, 2.0 * state.step)  # the same for every pair: they share one base
        age = state.candle_age(now)
        if age is not None:
            if age > bound:
                stale.append(f"{pair} {age:.0f} s")
        elif kernel.started_at is not None and kernel.ops_clock.timestamp() - kernel.started_at > bound:
            stale.append(f"{pair} none yet")
    return f"last candle older than {bound:.0f} s: {', '.join(stale)}" if stale else ""
