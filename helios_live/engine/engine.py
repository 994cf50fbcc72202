"""The live engine: stream -> per-pair queues -> candles -> features -> prediction -> chain -> ledger.

One asyncio process. The stream handler parses and routes each message to its pair's
bounded queue (a full queue makes the reader wait: back-pressure, never a dropped trade).
One worker per pair owns that pair's state, so a slow step on one pair never reorders
another's events. Ledger writes go to one writer thread in submission order; the event loop
never waits on the database. The clock is injected (`helios_live.clock`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from helios_core.errors import HeliosError
from helios_core.features.spec import FEATURE_SET_VERSION
from helios_core.features.streaming import Bar
from helios_live.clock import Clock, as_datetime
from helios_live.engine import catchup
from helios_live.engine.broadcast import Broadcaster
from helios_live.engine.catchup import DISCONNECTED
from helios_live.engine.chain import Context, Gate, PassThroughApproval, Signal, Step, run_chain
from helios_live.engine.desk import Desk, finite_or_none
from helios_live.engine.pair import Catchup, PairState, Pending
from helios_live.engine.writer import LedgerWriter
from helios_live.inference import Batcher, Predictor, load
from helios_live.ledger import Ledger, Outcome, PredictionRecord, StepRecord
from helios_live.models.registry import Registry, RegistryError
from helios_live.settings import HeliosSettings
from helios_live.stream.candles import STEP
from helios_live.stream.events import Book, Bucket, Control, Parser, Summary, Trade
from helios_live.stream.valr_ws import ValrStream
from helios_live.trading.steps import Execute, Guard, Size
from helios_live.trading.trader import position_key

log = logging.getLogger("helios.live")


class Engine:
    def __init__(
        self,
        settings: HeliosSettings,
        ledger: Ledger,
        registry: Registry,
        clock: Clock,
        *,
        rest: Any = None,
        lake: Any = None,
        approval: Step | None = None,
        tick_s: float = 0.1,
    ) -> None:
        self.settings = settings
        self.ledger, self.registry, self.clock = ledger, registry, clock
        self.rest, self.lake = rest, lake
        self.approval = approval or PassThroughApproval()
        self.tick_s = tick_s
        self.pairs: tuple[str, ...] = settings.live_pairs
        self.status = "STOPPED"
        self.auto_trading = False
        self.emergency_stop = False
        self.predictor: Predictor | None = None
        self.states: dict[str, PairState] = {}
        self.queues: dict[str, asyncio.Queue[tuple[object, float]]] = {}
        self.parser = Parser(self.pairs)
        self.stream: ValrStream | None = None
        self.broadcaster = Broadcaster()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.ledger_writer = LedgerWriter(ledger, self.writer)
        self.batcher = Batcher()
        self.desk = Desk(self)
        self.steps: list[Step] = self._steps()
        self.latencies: deque[float] = deque(maxlen=10_000)  # seconds, closing message -> committed row
        self.verdicts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.started_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refused: set[str] = set()  # versions that failed to load: tried once, recorded once

    # control -------------------------------------------------------------------------------
    async def start(self, pairs: tuple[str, ...] | None = None, *, connect: bool = True) -> None:
        """Start the workers and (with `connect`) the exchange stream; without it, messages come
        only through `on_message` (benchmarks and tests feeding recorded messages)."""
        if self.status in ("STARTING", "RUNNING"):
            raise EngineStateError(f"engine is {self.status}")
        self.status = "STARTING"
        self.pairs = pairs or self.settings.live_pairs
        self.parser = Parser(self.pairs)
        await self._run(self._restore_flags)
        self.desk = Desk(self)
        restored = await self._run(self.desk.restore, self.pairs)
        self.steps = self._steps()
        self.desk.prepare()
        await self._reload_model()
        window = self.predictor.window if self.predictor else self.settings.model_window
        self.states = {p: PairState(p, self.settings.live_close_grace_s, window) for p in self.pairs}
        self.queues = {p: asyncio.Queue(self.settings.live_queue_size) for p in self.pairs}
        for pair in self.pairs:
            for row in await self._run(self.ledger.pending_outcomes, pair):
                self.states[pair].pending.append(Pending(_done(row[0]), row[2], int(row[3].timestamp())))
        kind = "NEW_TRADE" if self.settings.live_candles == "trades" else "NEW_TRADE_BUCKET"
        subscriptions = {
            kind: self.pairs,
            "AGGREGATED_ORDERBOOK_UPDATE": self.pairs,
            "MARKET_SUMMARY_UPDATE": self.pairs,
        }
        self.stream = ValrStream(self.settings.live_ws_url, subscriptions, self)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._ticker(), name="ticker")]
        if connect:
            self._tasks.append(loop.create_task(self.stream.run(), name="stream"))
        self._tasks += [loop.create_task(self._worker(self.states[p]), name=f"pair-{p}") for p in self.pairs]
        self._tasks.append(loop.create_task(self._watch_model(), name="model-watch"))
        self._tasks.append(loop.create_task(self.desk.refit_loop(), name="refit"))
        self.started_at = time.monotonic()
        self.status = "RUNNING"
        await self.record("START", pairs=list(self.pairs), model=self.model_version, mode=self.mode)
        await self.record("PORTFOLIO_RESTORED", **restored)

    async def stop(self) -> None:
        if self.status == "STOPPED":
            raise EngineStateError("engine is not running")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a task that died earlier must not keep the engine from stopping
                log.exception("task %s failed", task.get_name())
        self._tasks = []
        self.desk.shutdown()
        self.status = "STOPPED"
        await self.record("STOP")

    async def close(self) -> None:
        if self.status != "STOPPED":
            await self.stop()
        self.writer.shutdown(wait=True)

    async def set_auto_trading(self, enabled: bool) -> None:
        self.auto_trading = enabled
        await self.record("AUTO_TRADING", enabled=enabled)

    async def set_emergency_stop(self, active: bool, reason: str = "") -> None:
        """Active: block every entry and close every open position at the market."""
        self.emergency_stop = active
        if active:
            closed = [t.position.key for t in self.desk.close_all("EMERGENCY")]
            await self.record("EMERGENCY_STOP", reason=reason, closed_positions=closed)
        else:
            # Clearing acknowledges the loss: the drawdown is measured from here on, or the
            # drawdown limit that stopped the engine would deny every entry for ever.
            self.desk.trader.account.reset_peak()
            await self.record("EMERGENCY_STOP_CLEARED", reason=reason)

    async def close_position(self, key: str) -> Any:
        """Close one open position at the market (a manual close)."""
        trade = self.desk.close(key, "MANUAL")
        await self.record("POSITION_CLOSED", pair=trade.position.pair, key=key, reason="MANUAL")
        return trade

    async def set_mode(self, mode: str, confirmation: str | None = None, reason: str = "") -> dict[str, Any]:
        """PAPER or LIVE; LIVE needs the confirmation phrase and exchange credentials (ModeError)."""
        started = time.perf_counter()
        self.desk.check_mode(mode, confirmation)
        if mode != self.desk.mode:
            record = self.desk.mode_record(mode, reason)
            # Switched before the await: no worker may open a position in the old mode meanwhile.
            previous, self.desk.mode = self.desk.mode, mode
            try:
                await self._run(self.ledger.record_mode, record)
            except BaseException:
                self.desk.mode = previous
                raise
            await self.record("MODE", mode=mode, previous=previous, reason=reason)
        return {"mode": self.desk.mode, "switch_ms": round((time.perf_counter() - started) * 1000, 3)}

    @property
    def mode(self) -> str:
        return self.desk.mode

    @property
    def model_version(self) -> str | None:
        return self.predictor.version if self.predictor else None

    def _steps(self) -> list[Step]:
        trader = self.desk.trader
        signal = Signal(self.settings.live_min_confidence)
        return [signal, Gate(), Size(trader), self.approval, Guard(trader), Execute(trader)]

    # the stream handler --------------------------------------------------------------------
    async def on_message(self, raw: str | bytes, received: float) -> None:
        event = self.parser.parse(raw)
        if event is None or isinstance(event, Control):
            return
        if isinstance(event, Trade | Summary):
            self.clock.observe(event.ts)
        elif isinstance(event, Bucket):
            self.clock.observe(event.start)
        queue = self.queues[event.pair]
        if queue.full():
            await queue.put((event, received))
        else:
            queue.put_nowait((event, received))

    async def on_connected(self) -> None:
        await self.record("STREAM_CONNECTED", url=self.settings.live_ws_url)

    async def on_disconnected(self, reason: str) -> None:
        for queue in self.queues.values():
            await queue.put((DISCONNECTED, time.perf_counter()))
        await self.record("STREAM_DISCONNECTED", reason=reason)

    # workers -------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = self.clock.now()
            if math.isnan(now):
                continue
            stamp = time.perf_counter()
            self.desk.snapshot_due()
            for queue in self.queues.values():
                if not queue.full():  # ticks are idempotent: a skipped one changes nothing
                    queue.put_nowait((now, stamp))

    async def _worker(self, state: PairState) -> None:
        queue = self.queues[state.pair]
        while True:
            item, received = await queue.get()
            try:
                if state.catchup is not None:
                    await catchup.catching_up(self, state, item, received)
                else:
                    await self.handle(state, item, received)
            except Exception as exc:  # a bug or bad data on one pair must not stop the engine
                self.errors[type(exc).__name__] += 1
                log.exception("pair %s: error handling %r", state.pair, item)
                await self.record("ERROR", pair=state.pair, error=f"{type(exc).__name__}: {exc}")
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued event is handled and every ledger write is committed."""
        for queue in self.queues.values():
            await queue.join()
        await self._run(lambda: None)

    async def handle(self, state: PairState, item: object, received: float) -> None:
        if isinstance(item, Trade):
            bar = state.builder.on_trade(item)
            await self.desk.on_price(state.pair, item.price, item.ts, state.book)
        elif isinstance(item, Bucket):
            bar = state.builder.on_bucket(item)
            await self.desk.on_price(state.pair, item.close, self.clock.now(), state.book)
        elif isinstance(item, float):
            bar = state.builder.advance(item)
            await self.desk.on_price(state.pair, 0.0, item, state.book)  # time-outs
        elif isinstance(item, Summary):
            await self.desk.on_price(state.pair, item.last, item.ts, state.book)
            return
        elif isinstance(item, Book):
            state.book = item
            return
        elif item == DISCONNECTED:
            state.catchup = Catchup(resume_from=finite_or_none(state.builder.discard_open()))
            return
        else:
            return
        if bar is not None:
            await self.on_bar(state, state.with_book(bar), received, live=True)

    async def on_bar(self, state: PairState, bar: Bar, received: float | None, live: bool) -> None:
        window = state.fold(bar)
        self.desk.trader.vol[state.pair].on_bar(bar)
        predictor = self.predictor
        close = bar.ts + STEP
        if predictor is not None:
            due = state.outcomes(bar, predictor.label)
            if due:
                asyncio.wrap_future(self.ledger_writer.submit_outcomes(due)).add_done_callback(self._filled)
        if not live or window is None or predictor is None:
            return
        if bar.ts <= self.desk.decided_until.get(state.pair, -math.inf):
            return  # decided before a restart: the ledger has its decision (and any trade)
        horizon = predictor.horizon_s
        prediction = await self.batcher.predict(predictor, *window)
        now = self.clock.now()
        context = Context(
            state.pair,
            prediction,
            predictor.version,
            bar.close,
            self.emergency_stop,
            self.auto_trading,
            now=close if math.isnan(now) else now,
            key=position_key(state.pair, bar.ts, predictor.version),
            mode=self.desk.mode,
            book=state.book,
        )
        verdicts = run_chain(self.steps, context)
        for verdict in verdicts:
            self.verdicts[f"{verdict.step}:{'approved' if verdict.approved else 'denied'}"] += 1
        record = PredictionRecord(
            pair=state.pair,
            candle_ts=as_datetime(bar.ts),
            decided_at=as_datetime(close),
            model_version=predictor.version,
            feature_set_version=FEATURE_SET_VERSION,
            feature_hash=prediction.feature_hash,
            prediction=prediction.label,
            p_buy=prediction.probabilities[0],
            p_sell=prediction.probabilities[1],
            p_hold=prediction.probabilities[2],
            confidence=prediction.confidence,
            entry_price=bar.close,
            outcome_due=as_datetime(close + horizon),
            latency_ms=None,
            steps=tuple(StepRecord(v.step, v.approved, v.reason) for v in verdicts),
            risk=context.risk,
            check=context.check,
            trade=context.trade,
        )
        snapshots = [self.desk.trader.snapshot(context.now, "FILL")] if context.trade else []
        stored = self.ledger_writer.submit(record, received, snapshots=snapshots)
        if context.trade is not None:
            self.desk.opened(context.trade)
        # Its outcome is flushed on the same writer thread after this insert: it can wait on it.
        state.pending.append(Pending(stored, bar.close, close + horizon))
        asyncio.wrap_future(stored).add_done_callback(partial(self._stored, state, record))

    def _stored(self, state: PairState, record: PredictionRecord, future: asyncio.Future[Any]) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("pair %s: prediction not stored: %s", state.pair, future.exception())
            if record.trade is not None:
                # The account must hold only what the ledger shows: forget the opening.
                self.desk.trader.account.undo_open(record.trade.position)
            return
        prediction_id, latency = future.result()
        if prediction_id is None:
            return  # already in the ledger (a restart re-processed this candle)
        state.predictions += 1
        if latency is not None:
            self.latencies.append(latency)
            if record.trade is not None:
                self.desk.fill_latencies.append(latency)
        self.broadcaster.publish({"type": "prediction", "id": prediction_id, **_public(record)})

    def _filled(self, future: asyncio.Future[list[Outcome]]) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("outcomes not stored: %s", future.exception())
            return
        for outcome in future.result():
            self.broadcaster.publish({"type": "outcome", "id": outcome.prediction_id, "actual": outcome.actual_outcome})

    # the model -----------------------------------------------------------------------------
    async def _watch_model(self) -> None:
        while True:
            await asyncio.sleep(self.settings.live_model_poll_s)
            await self._reload_model()

    async def _reload_model(self) -> None:
        active = await asyncio.to_thread(self.registry.active)
        if active is None or active == self.model_version or active in self._refused:
            return
        try:
            predictor = await asyncio.to_thread(load, self.registry, active)
        except (RegistryError, OSError) as exc:
            self._refused.add(active)
            await self.record("MODEL_REFUSED", version=active, reason=str(exc))
            return
        previous = self.model_version
        # Swapped between two events of the event loop: every candle is decided by exactly one model.
        self.predictor = predictor
        for state in self.states.values():
            state.set_window(predictor.window)
        await self.record("MODEL_LOADED", version=active, previous=previous, provider=predictor.provider)

    # the ledger ----------------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` on the ledger's writer thread, in order with every other ledger write."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None:
        """An engine event: into the ledger and out to the event stream. A ledger that is down
        is reported by /health; the engine carries on."""
        at = as_datetime(time.time())
        try:
            await self._run(self.ledger.record_event, kind, at, detail, pair)
        except HeliosError as exc:
            self.errors["ledger"] += 1
            log.error("engine event %s not recorded: %s", kind, exc)
        log.info("%s %s %s", kind, pair or "", detail)
        self.broadcaster.publish({"type": "engine", "kind": kind, "pair": pair, "at": at.isoformat(), **detail})

    def _restore_flags(self) -> None:
        latest = self.ledger.events(kind="EMERGENCY_STOP", limit=1).items
        cleared = self.ledger.events(kind="EMERGENCY_STOP_CLEARED", limit=1).items
        if latest and (not cleared or cleared[0]["id"] < latest[0]["id"]):
            self.emergency_stop = True
        auto = self.ledger.events(kind="AUTO_TRADING", limit=1).items
        if auto:
            self.auto_trading = bool(auto[0]["detail"].get("enabled"))


class EngineStateError(HeliosError):
    """A command that does not fit the engine's state (start while running, stop while stopped)."""


def _done(prediction_id: int) -> Future[tuple[int | None, float | None]]:
    future: Future[tuple[int | None, float | None]] = Future()
    future.set_result((prediction_id, None))
    return future


def _public(record: PredictionRecord) -> dict[str, Any]:
    return {
        "pair": record.pair,
        "candle_ts": record.candle_ts.isoformat(),
        "model_version": record.model_version,
        "prediction": record.prediction,
        "probabilities": {"BUY": record.p_buy, "SELL": record.p_sell, "HOLD": record.p_hold},
        "confidence": record.confidence,
        "entry_price": record.entry_price,
        "steps": [{"step": s.step, "approved": s.approved, "reason": s.reason} for s in record.steps],
    }
