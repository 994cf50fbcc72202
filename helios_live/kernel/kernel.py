"""The kernel: one engine for the live service and for every replay and backtest.

data client -> typed events -> per-pair bounded queues -> candles -> features -> prediction ->
decision chain -> execution client -> ledger. What differs between live and a backtest is
injected: the clock (`LiveClock`, or a `TestClock` the kernel moves to each event's exchange
time), the data client (VALR's stream, or a replay), and the execution clients. Everything
periodic is a timer on the clock: candle closes, portfolio snapshots, volatility refits,
model polling, position time-outs and health. Nothing here reads the wall clock.

Every pair's candles are of one base timeframe, the model's (`candle_s` seconds, 1m by default),
fixed when the engine starts: a model of another base promoted while it runs is refused.

One worker per pair owns that pair's state, so a slow step on one pair never reorders another's
events; a full queue makes the data client wait (back-pressure, never a dropped trade). In
`lockstep` (backtests) each event is handled to the end before the next one is taken, so the
run is the same on every machine. Ledger writes go to one writer thread in submission order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from helios_core.bars import STEP
from helios_core.decision import Context, Gate, Signal, Step, run_chain
from helios_core.errors import HeliosError
from helios_core.features.streaming import Bar
from helios_core.market import (
    Book,
    Bucket,
    DataEvent,
    Disconnected,
    MarketSummary,
    PairEvent,
    Reconnected,
    Tick,
    TradeTick,
    exchange_time,
)
from helios_core.surveillance.events import SecurityEvent, Severity
from helios_core.surveillance.gate import Restriction, depends_on
from helios_core.timeframes import as_datetime
from helios_core.trading.enums import CloseReason, TradingMode
from helios_core.trading.position import Execution, Position, position_key
from helios_live.alerts.recorder import Recorder
from helios_live.alerts.service import Alerts
from helios_live.approval.approver import Approver
from helios_live.approval.build import approver_for
from helios_live.approval.context import MarketContext
from helios_live.approval.context import build as market_context
from helios_live.approval.policy import CircuitBreaker
from helios_live.approval.step import Approval
from helios_live.clock import Clock, TestClock, TimeEvent
from helios_live.data.client import DataClient
from helios_live.data.lake import Lake
from helios_live.execution.paper import PaperExecutionClient
from helios_live.kernel import catchup, guard
from helios_live.kernel.bounded import bounded
from helios_live.kernel.broadcast import Broadcaster
from helios_live.kernel.model_watch import ModelWatch
from helios_live.kernel.pair import Arrival, Catchup, PairState, Pending
from helios_live.kernel.records import decision_record, public
from helios_live.kernel.refits import Refits, finite
from helios_live.kernel.stages import Stages
from helios_live.kernel.supervisor import Supervisor
from helios_live.kernel.tiers import SWITCHABLE, Switched, TierError, TierSwitches
from helios_live.kernel.timers import Timers, every
from helios_live.kernel.venue import NoVenue, Venue
from helios_live.ledger import Ledger, Outcome, PredictionRecord
from helios_live.ledger.records import PAGE_MAX
from helios_live.ledger.spool import Spool
from helios_live.ledger.writer import LedgerWriter, Stored
from helios_live.models.inference import Batcher, Predictor, SameBaseRegistry
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from helios_live.surveillance.gate import Followed, SurveillanceGate
from helios_live.surveillance.monitor import Surveillance
from helios_live.trading.allocation import Allocation, Allocator
from helios_live.trading.desk import Desk, ModeError
from helios_live.trading.steps import Execute, Guard, Size
from helios_live.trading.trader import TradingConfig
from helios_live.trading.volatility import Fitter

log = logging.getLogger("helios.live")
DAY_S = 86_400
WORKER_MAX_FAILURES = 5  # a pair's worker loop failing this often in a row is a bug: stop the engine


class Kernel(Timers):
    def __init__(
        self,
        settings: HeliosSettings,
        ledger: Ledger,
        registry: Registry,
        clock: Clock,
        client: DataClient,
        *,
        lake: Lake | None = None,
        approval: Step | None = None,
        approver: Approver | None = None,
        lockstep: bool = False,
        model_version: str | None = None,
        health: bool = True,
        ops_clock: Clock | None = None,
        spool: Spool | None = None,
        venue: Callable[[Kernel], Venue] | None = None,
        surveillance: Surveillance | None = None,
        allocator: Allocator | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        """`venue` builds the venue SHADOW and LIVE trade through, once the desk exists (none:
        PAPER only). `model_version` pins one model (a backtest); None follows the registry's ACTIVE one.
        `ops_clock` runs the operator's jobs (model polling, health, restart backoffs, uptime):
        the machine's clock for a service whose market clock follows a replaying exchange,
        by default the market clock itself. `spool` keeps the ledger's writes while its database
        is unreachable (none: a failed write is lost, and entries stop until writes succeed).
        `surveillance` runs the monitors in this process (settings.surveillance.run "in-process");
        with run "ledger" the kernel follows the events `helios surveil` writes to the ledger.
        `approval` replaces Tier 4's step whole (a backtest's baseline without it); otherwise
        the step asks `approver`, by default the one the settings name. `allocator` computes
        the allocation's targets at each daily check (a backtest's, on its own clock); without
        one the kernel reads the newest targets from the ledger. `alerts` hears every engine
        event and reads the engine's state on a timer of the ops clock (docs/alerts.md)."""
        self.settings = settings
        self.ledger, self.registry, self.clock, self.client, self.lake = ledger, registry, clock, client, lake
        self.ops_clock = ops_clock or clock
        self.lockstep = lockstep
        self.candle_s = STEP  # seconds of the pairs' base candle: the model's, set at each start
        served = SameBaseRegistry(registry, lambda: self.candle_s if self.status == "RUNNING" else None)
        self.models = ModelWatch(served, model_version, self.record)
        self.health_timer = health
        self.follows_data = isinstance(clock, TestClock)
        self.pairs: tuple[str, ...] = settings.live.pairs
        self.status = "STOPPED"
        self.auto_trading = False
        self.emergency_stop = False
        self._failing: list[str] | None = None
        self.stream_lag: float | None = None  # clock minus the latest event's exchange time (live clocks)
        self.states: dict[str, PairState] = {}
        self.queues: dict[str, asyncio.Queue[Arrival]] = {}
        self._deciding = 0  # decisions under way
        self.broadcaster = Broadcaster()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.stages = Stages()  # wall time per stage of a decision (and the ledger's commits), for /metrics
        self.ledger_writer = LedgerWriter(
            ledger,
            self.writer,
            self.ops_clock.timestamp,
            spool=spool,
            retry_s=settings.ledger.retry_s,
            on_commit=partial(self.stages.observe, "ledger_commit"),
            busy=self._busy,
        )
        self.batcher = Batcher()
        # Seconds, closing message -> committed row, of live decisions only; a decision on a
        # message that arrived before its pair finished catching up waited for the catch-up too.
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.catchup_latencies: deque[float] = deque(maxlen=10_000)
        self.order_latencies: deque[float] = deque(maxlen=10_000)  # closing message -> order answered (not PAPER)
        self.decision_latency = Stages()  # every measured decision's latency, "live" / "catchup"
        self.verdicts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.supervisor = Supervisor(self.ops_clock, self.record, self.errors, self._give_up)
        self.fitter = Fitter(settings.risk.fit_process)
        config = TradingConfig.from_settings(settings)
        self.desk = Desk(config, self.pairs, self.ledger_writer, self._book, self.broadcaster.publish)
        self.desk.connect(TradingMode.PAPER, PaperExecutionClient(self.desk, config.fills))
        self.desk.on_opened = self._opened
        self.venue: Venue = venue(self) if venue is not None else NoVenue()
        self.refits = Refits(
            self.fitter, self.desk, settings.risk.refit_s, self.record, self.supervisor.timer, self.errors
        )
        self.sizing = Size(self.desk)
        self.tiers = TierSwitches()
        self.approval: Step = approval or Approval(
            approver or approver_for(settings, ledger),
            self._market,
            self.sizing,
            self.desk.last,
            policy=settings.llm.failure_policy,
            breaker=CircuitBreaker(settings.llm.circuit_failures, settings.llm.circuit_cooldown_s),
            deadline_s=settings.llm.deadline_s,
            tolerance=settings.llm.price_tolerance,
            record=self.record,
            switched_on=lambda: self.tiers.on("tier4"),
        )
        self.allocation = Allocation(
            settings.allocation, self.desk, self.ledger_writer, ledger, self.record, self.market_now, allocator
        )
        self.surveillance = surveillance
        self.followed = Followed(settings.surveillance.fx) if settings.surveillance.run == "ledger" else None
        if surveillance is not None:
            surveillance.on_event = self._security_event
        self._decisions: set[asyncio.Task[None]] = set()  # decisions waiting on an async step
        self.steps: list[Step] = self._steps()
        self.started_at: float | None = None  # on the ops clock, for the uptime
        self._timers_set = False
        self._arriving: float | None = None
        self._halting: asyncio.Task[None] | None = None
        self.alerts = alerts
        if alerts is not None:
            writes = partial(self.ledger_writer.run, ledger.record_alert_deliveries)
            recorder = Recorder(writes, lambda: not self.ledger_writer.health.failing)
            alerts.bind(self.ops_clock.timestamp, self.record, recorder)

    # control -------------------------------------------------------------------------------
    async def start(self, pairs: tuple[str, ...] | None = None, *, connect: bool = True) -> None:
        """Start the workers and (with `connect`) the data client; without it, events come only
        through `on_event` (tests and benchmarks handing events over themselves)."""
        if self.status in ("STARTING", "RUNNING"):
            raise EngineStateError(f"engine is {self.status}")
        self.status = "STARTING"
        self._halting = None  # a new run: whether it gives up is its own
        self.pairs = pairs or self.settings.live.pairs
        await self._run(self.ledger_writer.land)  # what a run before this one left in the spool comes first
        await self._run(self._restore_flags)
        restored = await self._run(self.desk.restore, self.ledger, self.pairs)
        await self._restore_spend()
        self.steps = self._steps()
        self.fitter.prepare()
        await self._reload_model()
        window = self.predictor.window if self.predictor else self.settings.model.window
        self.candle_s = self.predictor.step if self.predictor else STEP
        grace = self.settings.live.close_grace_s
        config = self.settings.guard.config()
        self.states = {p: PairState(p, grace, window, config, self.candle_s) for p in self.pairs}
        for position in self.desk.account.positions.values():
            self._opened(position)
            mark = self.desk.account.marks.get(position.pair, position.entry_price)
            self.states[position.pair].guard.seed(mark, position.opened_at.timestamp())
        self.queues = {p: asyncio.Queue(self.settings.live.queue_size) for p in self.pairs}
        for pair in self.pairs:
            for row in await self._run(self.ledger.pending_outcomes, pair):
                self.states[pair].pending.append(Pending(_done(row[0]), row[2], int(row[3].timestamp())))
        for pair in self.pairs:
            self.supervisor.task(
                f"pair-{pair}", partial(self._worker, self.states[pair]), max_failures=WORKER_MAX_FAILURES
            )
        if connect:
            self.supervisor.task("data", partial(self.client.run, self.pairs, self.on_event))
        await self._start_venue(self.desk.mode)
        if self.surveillance is not None:
            await self.surveillance.restore()
            self.surveillance.start(self.ops_clock)
        if self.allocation.reads_ledger:
            await self.allocation.refresh()
        if self.followed is not None:
            await self._follow_events(TimeEvent("surveil-follow", 0))
            every(self, self.ops_clock, "surveil-follow", self.settings.surveillance.follow_s, self._follow_events)
        self.started_at = self.ops_clock.timestamp()
        self.status = "RUNNING"
        self._set_ops_timers()
        if self.clock.is_set:
            self._set_timers()
        await self.record("START", pairs=list(self.pairs), model=self.model_version, mode=self.mode)
        await self.record("PORTFOLIO_RESTORED", **restored)

    async def _start_venue(self, mode: TradingMode) -> None:
        """SHADOW or LIVE restored from the ledger (or switched to): its client ready, and in
        LIVE the account followed; if VALR cannot be reached, entries wait (exits still run)."""
        if mode is TradingMode.PAPER:
            return
        try:
            await self.venue.enter(mode)
            await self.venue.start(mode, self.supervisor, self.ops_clock)
        except HeliosError as exc:  # refused, or VALR unreachable: entries wait, exits run
            self.venue.block = f"{mode}: VALR is not ready: {exc}"
            await self.record("VENUE_UNAVAILABLE", mode=mode, error=str(exc))

    async def stop(self) -> None:
        if self.status == "STOPPED":
            raise EngineStateError("engine is not running")
        self.status = "STOPPING"
        self.clock.cancel_all()
        self.ops_clock.cancel_all()
        self._timers_set = False
        if self.surveillance is not None:
            self.surveillance.stop()
        await self.supervisor.stop()
        # A decision still waiting on its approver would trade after the stop: it is dropped.
        cancelled = [task for task in self._decisions if task.cancel()]
        await asyncio.gather(*cancelled, return_exceptions=True)
        self._deciding = 0  # one cancelled before it began never counted itself out
        self._release()
        self.refits.cancel(self.states)
        self.fitter.shutdown()
        self.status = "STOPPED"
        if cancelled:
            await self.record("STOP", decisions_dropped=len(cancelled))
        else:
            await self.record("STOP")

    async def close(self) -> None:
        if self._halting is not None:
            await self._halting
        if self.status != "STOPPED":
            await self.stop()
        await self.client.close()
        await self.venue.close()
        if self.surveillance is not None:
            await self.surveillance.close()
        if self.alerts is not None:
            await self.alerts.close()
        self.ledger_writer.hand_over()
        self.writer.shutdown(wait=True)

    async def set_auto_trading(self, enabled: bool) -> None:
        self.auto_trading = enabled
        await self.record("AUTO_TRADING", enabled=enabled)

    async def set_emergency_stop(self, active: bool, reason: str = "", now: float | None = None) -> None:
        """Active: block every entry and close every open position at the market (at `now`, by
        default the clock's)."""
        self.emergency_stop = active
        if active:
            if self.desk.mode is TradingMode.LIVE:
                # Orders resting on VALR would trade after the stop: cancelled before anything else.
                try:
                    cancelled = await self.venue.cancel_all()
                    await self.record("EMERGENCY_ORDERS_CANCELLED", reason=reason, orders=cancelled)
                except HeliosError as exc:  # the closes still go out
                    await self.record("EMERGENCY_CANCEL_FAILED", reason=reason, error=str(exc))
            held = list(self.desk.account.positions)
            closed = await self.desk.close_all(CloseReason.EMERGENCY, self.market_now() if now is None else now)
            keys = [e.position.key for e in closed]
            if self.desk.mode is TradingMode.LIVE:  # a close's fill comes later, from VALR
                await self.record("EMERGENCY_STOP", reason=reason, closed_positions=keys, close_orders_sent=held)
                await self.record("EMERGENCY_ENTRIES_BLOCKED", reason=reason)
            else:
                await self.record("EMERGENCY_STOP", reason=reason, closed_positions=keys)
        else:
            # Clearing acknowledges the loss: the drawdown is measured from here on, or the
            # drawdown limit that stopped the engine would deny every entry for ever.
            self.desk.account.reset_peak()
            await self.record("EMERGENCY_STOP_CLEARED", reason=reason)

    async def set_tier(self, tier: str, enabled: bool, by: str = "") -> None:
        """Switch a tier on or off (TierError where that is unknown or unsafe); recorded, and
        restored at the next start."""
        self.tiers.check(tier, enabled)
        if tier == "tier4" and not isinstance(self.approval, Approval):
            raise TierError("this engine's approval step has no switch")
        self.tiers.set(tier, enabled)
        await self.record("TIER_SWITCHED", tier=tier, enabled=enabled, by=by)

    async def close_position(self, key: str) -> Execution:
        """Close one open position at the market (a manual close)."""
        execution = await self.desk.close(key, CloseReason.MANUAL, self.market_now())
        await self.record("POSITION_CLOSED", pair=execution.position.pair, key=key, reason=CloseReason.MANUAL)
        return execution

    async def set_mode(self, mode: TradingMode, confirmation: str | None = None, reason: str = "") -> TradingMode:
        """PAPER or LIVE; LIVE needs the confirmation phrase and exchange credentials (ModeError)."""
        self.desk.check_mode(mode, confirmation, self.settings.valr.credentials)
        if mode != self.desk.mode:
            await self.venue.enter(mode)  # LIVE: the read-only check of the credentials
            record = self.desk.mode_record(mode, reason, self.clock.timestamp())
            # Switched before the await: no worker may open a position in the old mode meanwhile.
            previous, self.desk.mode = self.desk.mode, mode
            try:
                await self._run(self.ledger.record_mode, record)
            except BaseException:
                self.desk.mode = previous
                raise
            await self.record("MODE", mode=mode, previous=previous, reason=reason)
            if self.status == "RUNNING" and mode is TradingMode.LIVE:
                await self.venue.start(mode, self.supervisor, self.ops_clock)
        return self.desk.mode

    async def reconcile(self) -> dict[str, Any]:
        """VALR's account against the ledger now (ModeError outside LIVE or when VALR is unreachable)."""
        try:
            return await self.venue.reconcile()
        except ModeError:
            raise
        except HeliosError as exc:
            raise ModeError(f"VALR could not be asked: {exc}") from exc

    async def acknowledge_reconciliation(self, rec_id: int, by: str, note: str) -> bool:
        return await self.venue.acknowledge(rec_id, by, note, self.ops_clock.timestamp())

    def market_now(self) -> float:
        """The market's time for a command (a close, an emergency stop): the clock's; on a clock
        that follows the data and has none yet, the latest the account knows from the ledger,
        not the machine's, which may be years ahead of a replay and would end its day early."""
        if self.clock.is_set or not self.follows_data:
            return self.clock.timestamp()
        known = self.desk.account.known_at
        return known if known is not None else self.clock.timestamp()

    @property
    def measured(self) -> Counter[str]:
        """Decisions with a latency since the start, by "live" / "catchup" (the histograms' counts)."""
        return Counter({kind: h.count for kind, h in self.decision_latency.snapshot().items()})

    @property
    def gave_up(self) -> bool:
        """Whether a task kept failing and the engine stopped itself (a restart may help)."""
        return self._halting is not None and self.status == "STOPPED"

    @property
    def mode(self) -> TradingMode:
        return self.desk.mode

    @property
    def predictor(self) -> Predictor | None:
        return self.models.predictor

    @property
    def model_version(self) -> str | None:
        return self.models.version

    def _steps(self) -> list[Step]:
        signal = Switched(Signal(self.settings.live.min_confidence), "tier2", self.tiers)
        steps: list[Step] = [signal, Gate(), self.sizing, self.approval, Guard(self.desk), Execute(self.desk)]
        if self.settings.allocation.enabled:
            allocation = Switched(self.allocation.step(), "tier5", self.tiers, skip=True)
            steps.insert(steps.index(self.approval) + 1, allocation)
        if self.surveillance is not None or self.followed is not None:
            gate = SurveillanceGate(self._restriction, self.settings.surveillance.high_size_factor)
            steps.insert(steps.index(self.approval) + 1, gate)
        return bounded(steps, self.settings.live.step_deadline_s, self._waiting)

    def _restriction(self, pair: str) -> Restriction:
        if self.surveillance is not None:
            return self.surveillance.restriction(pair)
        return self.followed.restriction(pair) if self.followed is not None else Restriction()

    async def _security_event(self, event: SecurityEvent) -> None:
        kind = "SECURITY_EVENT" if event.active else "SECURITY_EVENT_ENDED"
        pairs = [p for p in self.pairs if event.asset in depends_on(p, self.settings.surveillance.fx)]
        await self.record(
            kind,
            pairs[0] if len(pairs) == 1 else None,
            event_id=event.id,
            type=event.type,
            venue=event.venue,
            asset=event.asset,
            severity=str(event.severity),
            score=round(event.score, 1),
            pairs=pairs,
        )
        await self._emergency(event)

    async def _emergency(self, event: SecurityEvent) -> None:
        """Tier 5's emergency rebalance on an active event at or above its level (once per event
        and severity): HIGH trims the pairs it names by the surveillance factor, CRITICAL closes them."""
        if not (self.settings.allocation.enabled and event.active):
            return
        pairs = [p for p in self.pairs if event.asset in depends_on(p, self.settings.surveillance.fx)]
        if not pairs or event.severity < Severity[self.settings.allocation.emergency]:
            return
        factor = 0.0 if event.severity >= Severity.CRITICAL else self.settings.surveillance.high_size_factor
        why = f"{event.severity} {event.type} on {event.venue}/{event.asset} (event {event.id})"
        await self.allocation.emergency(event.id, int(event.severity), pairs, factor, why, self.market_now())

    async def _follow_events(self, event: TimeEvent) -> None:
        if self.followed is not None:
            try:
                events = await asyncio.get_running_loop().run_in_executor(None, self.followed.refresh, self.ledger)
                self.followed.error = ""
            except HeliosError as exc:  # the events as last read stay in force
                self.followed.error = str(exc)
                return
            for found in events:  # `helios surveil` found them: the same emergency as in-process
                await self._emergency(found)

    def _waiting(self, count: int) -> None:
        self._deciding -= count  # a decision waiting on an answer holds no ledger flush

    def _market(self, context: Context) -> MarketContext:
        """Tier 4's view of one decision, from the pair's own state and the account's."""
        state = self.states[context.pair]
        trader = self.desk.trader
        others = [p for p in self.pairs if p != context.pair]
        vol = trader.vol[context.pair]
        return market_context(
            context,
            (vol.returns.buckets, vol.returns.values),
            vol.daily_vol,
            vol.regime,
            state.volume(),
            state.book,
            trader.account,
            {other: trader.correlation(context.pair, other) for other in others},
            tuple(state.scored),
        )

    def _opened(self, position: Position) -> None:
        state = self.states.get(position.pair)
        if state is not None:
            self._watch(state, position.key, position.deadline.timestamp())

    def _book(self, pair: str) -> Book | None:
        state = self.states.get(pair)
        return state.book if state is not None else None

    # events in -----------------------------------------------------------------------------
    async def on_event(self, event: DataEvent, received: float | None = None) -> None:
        """One event from the data client; `received` is the `perf_counter()` of its message."""
        ts = exchange_time(event)
        if ts is not None and self.follows_data:
            self._arriving = received  # what the ticks it brings due were brought by
            try:
                await self._advance(ts)
            finally:
                self._arriving = None
        elif ts is not None:
            # A bucket may be sent at its minute's end: it is current until then.
            end = ts + event.period if isinstance(event, Bucket) else ts
            self.stream_lag = self.clock.timestamp() - end
        if isinstance(event, Tick):
            return
        if isinstance(event, Reconnected):
            await self.record("STREAM_CONNECTED", url=event.source)
            return
        if isinstance(event, Disconnected):
            for queue in self.queues.values():
                await self._put(queue, event, None)
            await self.record("STREAM_DISCONNECTED", reason=event.reason)
            return
        target = self.queues.get(event.pair)
        if target is not None:
            await self._put(target, event, received)

    async def _put(self, queue: asyncio.Queue[Arrival], event: PairEvent, received: float | None) -> None:
        if self.status not in ("STARTING", "RUNNING"):
            raise EngineStateError(f"engine is {self.status}: the event was not handled")
        # Before a clock that follows the data has its first time, an event has no time yet.
        arrival = Arrival(event, received, self.clock.timestamp() if self.clock.is_set else math.nan)
        if queue.full():
            await queue.put(arrival)
        else:
            queue.put_nowait(arrival)
        if self.lockstep:
            await queue.join()
            if self.status not in ("STARTING", "RUNNING"):
                raise EngineStateError(f"engine is {self.status}: the event was not handled")

    def _release(self) -> None:
        """Empty the queues of a stopped engine: whoever waits for one to be handled (a replay in
        lockstep) hears that it never will be."""
        for queue in self.queues.values():
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()

    async def _advance(self, ts: float) -> None:
        clock = self.clock
        assert isinstance(clock, TestClock)  # noqa: S101 -- follows_data means a TestClock
        first = not clock.is_set
        await clock.advance_to(ts)
        if first and self.status == "RUNNING":
            self._set_timers()

    async def drain(self) -> None:
        """Wait until every queued event is handled and every ledger write is committed."""
        for queue in self.queues.values():
            await queue.join()
        while self._decisions:
            await asyncio.gather(*self._decisions, return_exceptions=True)
        await self._run(lambda: None)

    # workers -------------------------------------------------------------------------------
    def _busy(self) -> bool:
        """Whether a decision is under way (between its candle's features and its ledger unit)."""
        return self._deciding > 0

    async def _worker(self, state: PairState) -> None:
        queue = self.queues[state.pair]
        while True:
            arrival = await queue.get()
            try:
                if not math.isnan(arrival.at):
                    await state.timers.advance_to(arrival.at)  # the pair's own alarms, due by then
                state.now = arrival.at
                if state.catchup is not None:
                    await catchup.catching_up(self, state, arrival)
                else:
                    await self.handle(state, arrival)
                self.refits.ask_if_due(state)
            except Exception as exc:  # a bug or bad data on one pair must not stop the engine
                self.errors[type(exc).__name__] += 1
                log.exception("pair %s: error handling %r", state.pair, arrival.event)
                await self.record("ERROR", pair=state.pair, error=f"{type(exc).__name__}: {exc}")
            finally:
                queue.task_done()

    def now(self, state: PairState) -> float:
        """The time a pair's event is handled at: when it arrived on a clock that follows the
        data (a replay: the same whatever the queue's lag), the clock itself on a live one."""
        return state.now if self.follows_data else self.clock.timestamp()

    async def handle(self, state: PairState, arrival: Arrival) -> None:
        """A pair's event, through the price guard: what it holds back moves nothing yet."""
        for item in await guard.admit(self, state, arrival.event):
            await self._apply(state, item, arrival.received)

    async def _apply(self, state: PairState, item: PairEvent, received: float | None) -> None:
        pair = state.pair
        if isinstance(item, TradeTick):
            bar = state.builder.on_trade(item)
            await self.prices(pair, item.price, item.ts)
        elif isinstance(item, Bucket):
            bar = state.builder.on_bucket(item)
            await self.prices(pair, item.close, self.now(state))
        elif isinstance(item, Tick):
            bar = state.builder.advance(item.ts)
            await self.prices(pair, math.nan, item.ts)  # time-outs
        elif isinstance(item, MarketSummary):
            await self.prices(pair, item.last, item.ts)
            return
        elif isinstance(item, Book):
            return  # the guard set it
        else:  # Disconnected: what follows may have a hole before it
            state.catchup = Catchup(resume_from=finite(state.builder.discard_open()))
            return
        if bar is not None:
            await self.on_bar(state, state.with_book(bar), received, live=True)

    async def prices(self, pair: str, price: float, now: float) -> None:
        """A price (NaN: a tick) for the desk's positions; the drawdown hard stop if it is hit."""
        if await self.desk.on_price(pair, price, now) and not self.emergency_stop:
            account, limit = self.desk.account, self.desk.config.limits.max_drawdown
            reason = f"drawdown {account.drawdown:.2%} reached the {limit:.0%} hard stop"
            await self.set_emergency_stop(True, reason, now)

    async def on_bar(self, state: PairState, bar: Bar, received: float | None, live: bool) -> None:
        """A closed candle: features, and with `live` (not a backfilled one) and a full window,
        the model and the decision chain. A candle closed by a message (`received`, its
        `perf_counter()`) has its stages timed; a replayed one reads no clock."""
        if state.fit is not None:
            await self.refits.install(state)
        watch = self.stages.watch(received is not None)
        window = state.fold(bar)
        watch.lap("features")
        close = bar.ts + state.step
        state.guard.on_candle(close, bar.close)
        self.desk.trader.vol[state.pair].on_bar(bar, state.step)
        if self.surveillance is not None and state.step == 60 and live:
            self.surveillance.candle(state.pair, bar, close)
        predictor = self.predictor
        if predictor is not None:
            due = state.outcomes(bar, predictor.label)
            if due:
                asyncio.wrap_future(self.ledger_writer.submit_outcomes(due)).add_done_callback(self._filled)
        if not live or window is None or predictor is None:
            return
        if bar.ts <= self.desk.decided_until.get(state.pair, -math.inf):
            return  # decided before a restart: the ledger has its decision (and any trade)
        if state.deciding is not None:  # a pair's decisions land in order (the last one's wait is bounded)
            await asyncio.wait([state.deciding])
        self._deciding += 1  # the ledger's flush waits for the decisions under way (one transaction)
        try:
            watch.restart()
            prediction = await self.batcher.predict(predictor, *window)
            watch.lap("inference")  # the await's wall time: the batch the pair waited for, not one row's share
            now = self.now(state)
            context = Context(
                state.pair,
                prediction,
                predictor.version,
                bar.close,
                self.emergency_stop,
                self.auto_trading,
                now=close if math.isnan(now) else now,
                candle_ts=bar.ts,
                key=position_key(state.pair, bar.ts, predictor.version),
                mode=self.desk.mode,
                halted=self.halted(),
            )
        except BaseException:
            self._deciding -= 1
            raise
        decision = (state, bar, predictor, context, received, watch)
        if self.lockstep or not getattr(self.approval, "remote", False):
            # A backtest, or a chain whose every step answers at once: the decision to its end
            # before the pair's next event, so the live engine decides as a replay does.
            await self._decide(*decision)
            return
        # An approver that calls out: the chain runs beside the pair's worker, so that while it
        # waits the pair's prices still move its stops and time-outs.
        task = asyncio.get_running_loop().create_task(self._detached(*decision), name=f"decide-{state.pair}")
        state.deciding = task
        self._decisions.add(task)
        task.add_done_callback(partial(self._decided, state))

    async def _decide(
        self, state: PairState, bar: Bar, predictor: Predictor, context: Context, received: float | None, watch: Any
    ) -> None:
        try:
            watch.restart()
            verdicts = await run_chain(self.steps, context, watch.step)
            if received is not None and context.mode is not TradingMode.PAPER and verdicts[-1].step == "execution":
                # Execution is the chain's last step: its verdict is VALR's answer (or SHADOW's build).
                self.order_latencies.append(time.perf_counter() - received)
            for verdict in verdicts:
                self.verdicts[f"{verdict.step}:{'approved' if verdict.approved else 'denied'}"] += 1
            record = decision_record(bar, predictor, context, verdicts)
            execution = context.execution
            snapshots = [self.desk.snapshot(context.now, "FILL")] if execution else []
            stored = self.ledger_writer.submit(record, received, snapshots=snapshots)
        finally:
            self._deciding -= 1
        if execution is not None:
            self.desk.opened(execution)
        close = bar.ts + state.step
        # Its outcome is flushed on the same writer thread after this insert: it can wait on it.
        state.pending.append(Pending(stored, bar.close, close + predictor.horizon_s, context.prediction.label))
        catching_up = received is not None and received < state.catching_up_until
        asyncio.wrap_future(stored).add_done_callback(partial(self._stored, state, record, catching_up))

    async def _detached(
        self, state: PairState, bar: Bar, predictor: Predictor, context: Context, received: float | None, watch: Any
    ) -> None:
        try:
            await self._decide(state, bar, predictor, context, received, watch)
        except Exception as exc:  # as in the pair's worker: one bad decision must not stop the engine
            self.errors[type(exc).__name__] += 1
            log.exception("pair %s: error deciding", state.pair)
            await self.record("ERROR", pair=state.pair, error=f"{type(exc).__name__}: {exc}")

    def _decided(self, state: PairState, task: asyncio.Task[None]) -> None:
        self._decisions.discard(task)
        if state.deciding is task:
            state.deciding = None

    def _stored(
        self, state: PairState, record: PredictionRecord, catching_up: bool, future: asyncio.Future[Stored]
    ) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("pair %s: prediction not stored: %s", state.pair, future.exception())
            if record.execution is not None:
                # The account must hold only what the ledger shows: forget the opening.
                self.desk.account.undo_open(record.execution.position)
            return
        prediction_id, latency, spooled = future.result()
        if prediction_id is None and not spooled:
            return  # already in the ledger (a restart re-processed this candle)
        state.predictions += 1
        if latency is not None and catching_up:  # its message waited for the catch-up: not a live figure
            self.catchup_latencies.append(latency)
            self.decision_latency.observe("catchup", latency)
        elif latency is not None:
            self.latencies.append(latency)
            self.decision_latency.observe("live", latency)
            if record.execution is not None:
                self.desk.fill_latencies.append(latency)
        # A spooled decision has no row id yet: it gets one when the spool lands.
        latency_ms = None if latency is None else latency * 1e3
        event = {"type": "prediction", "id": prediction_id, "spooled": spooled, "latency_ms": latency_ms}
        self.broadcaster.publish({**event, **public(record)})

    def _filled(self, future: asyncio.Future[list[Outcome]]) -> None:
        if future.exception() is not None:
            self.errors["ledger"] += 1
            log.error("outcomes not stored: %s", future.exception())
            return
        for outcome in future.result():
            self.broadcaster.publish({"type": "outcome", "id": outcome.prediction_id, "actual": outcome.actual_outcome})

    async def fit_now(self, state: PairState) -> None:
        """Fit the pair's volatility model at once (the end of its warm-up), then on schedule."""
        await self.refits.now(state, self.now(state))

    async def _reload_model(self) -> None:
        if await self.models.reload():
            predictor = self.models.predictor
            assert predictor is not None  # noqa: S101 -- reload said it loaded one
            for state in self.states.values():
                state.set_window(predictor.window)

    # the ledger ----------------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` on the ledger's writer thread, in order with every other ledger write."""
        return await self.ledger_writer.run(fn, *args)

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None:
        """An engine event, stamped with the clock's time: into the ledger (or its spool) and out
        to the event stream. A ledger that is down is reported by /health; the engine carries on."""
        at = as_datetime(self.clock.timestamp())
        try:
            await self._run(self.ledger_writer.event, kind, at, detail, pair)
        except HeliosError as exc:
            self.errors["ledger"] += 1
            log.error("engine event %s not recorded: %s", kind, exc)
        log.info("%s %s %s", kind, pair or "", detail)
        self.broadcaster.publish({"type": "engine", "kind": kind, "pair": pair, "at": at.isoformat(), **detail})
        if self.alerts is not None:
            self.alerts.on_event(kind, pair, detail)

    def halted(self) -> str:
        """Why entries stop now, by the stated rule (docs/live.md): a new position must be in the
        ledger or its spool, or it could not be shown or recovered; exits still run."""
        return self.ledger_writer.refusing() or self.venue.blocking()

    def count_error(self, kind: str) -> None:
        self.errors[kind] += 1

    async def _restore_spend(self) -> None:
        """Today's Tier 4 spend as the ledger has it, so a restart does not reset the day's ceiling."""
        budget = getattr(getattr(self.approval, "approver", None), "budget", None)
        if budget is None:
            return
        now = self.market_now()
        spent = await self._run(self.ledger.llm_spend, as_datetime(now - now % DAY_S))
        budget.restore(spent, now)

    def _restore_flags(self) -> None:
        latest = self.ledger.events(kind="EMERGENCY_STOP", limit=1).items
        cleared = self.ledger.events(kind="EMERGENCY_STOP_CLEARED", limit=1).items
        if latest and (not cleared or cleared[0]["id"] < latest[0]["id"]):
            self.emergency_stop = True
        auto = self.ledger.events(kind="AUTO_TRADING", limit=1).items
        if auto:
            self.auto_trading = bool(auto[0]["detail"].get("enabled"))
        self._restore_tiers()

    def _restore_tiers(self) -> None:
        """Each tier's latest switch, however far back: switches are few, a page holds many."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.ledger.events(kind="TIER_SWITCHED", cursor=cursor, limit=PAGE_MAX)
            for event in page.items:  # newest first
                tier = str(event["detail"].get("tier"))
                if tier not in seen:
                    seen.add(tier)
                    with contextlib.suppress(TierError):  # a tier this version cannot switch off stays on
                        self.tiers.set(tier, bool(event["detail"].get("enabled")))
            cursor = page.next_cursor
            if cursor is None or seen >= SWITCHABLE:
                return

    async def _give_up(self, task: str) -> None:
        """The stated rule for a task that keeps failing: close everything and stop the engine,
        in a task of its own (the failing task is among those the stop cancels)."""

        async def halt() -> None:
            await self.set_emergency_stop(True, f"task {task} kept failing")
            if self.status == "RUNNING":
                await self.stop()

        self._halting = asyncio.get_running_loop().create_task(halt(), name="halt")


class EngineStateError(HeliosError):
    """A command that does not fit the engine's state (start while running, stop while stopped)."""


def _done(prediction_id: int) -> Future[Stored]:
    future: Future[Stored] = Future()
    future.set_result(Stored(prediction_id, None))
    return future
