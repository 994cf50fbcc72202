"""The surveillance monitors on a clock: oracle and price deviation (every `oracle_s`),
liquidation cascades (`liquidations_s`) and vault health (`vault_s`), each run with a deadline,
concurrently with the others. Every check's readings and the events they make or end go to the
store (ledger, through the spool); every event that changes is handed to `on_event` (the kernel
records it and the gate follows it). A source that fails, times out or answers badly is counted
and reported; the other sources' checks go on.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from helios_core.errors import HeliosError
from helios_core.pairs import split_pair
from helios_core.surveillance import cascade, deviation, vault
from helios_core.surveillance.anomaly import MarketStats
from helios_core.surveillance.cascade import CascadeConfig, CascadeDetector, CascadeReading
from helios_core.surveillance.deviation import DeviationConfig, DeviationReading, DeviationTracker
from helios_core.surveillance.events import EventBook, Finding, SecurityEvent, Severity
from helios_core.surveillance.gate import Restriction, restriction
from helios_core.surveillance.observations import Quote
from helios_core.surveillance.vault import VaultConfig, VaultHealth, VaultReading
from helios_core.timeframes import as_datetime
from helios_live.clock import Clock, TimeEvent
from helios_live.ledger.surveillance import Row
from helios_live.settings import SurveillanceSettings
from helios_live.surveillance import rows
from helios_live.surveillance.anomaly import AnomalyScore, AnomalyScorer
from helios_live.surveillance.store import SurveillanceStore

log = logging.getLogger("helios.surveillance")
HYPERLIQUID = "hyperliquid"
TRADES = "hyperliquid-trades"  # the venue label of Hyperliquid's traded price in the deviation rows
MARKET = "market"  # the venue of a market anomaly: the pair's own candles
VALR = "valr"
CHECKS = ("oracle", "liquidations", "vault")


class QuoteSource(Protocol):
    venue: str

    async def quotes(self, assets: Sequence[str]) -> Any: ...


class TradeStream(Protocol):
    """Hyperliquid's WebSocket trades (venues/hyperliquid/stream.py): runs until cancelled,
    handing each trade to `on_quote`."""

    on_quote: Any
    connected: bool

    async def run(self) -> None: ...


class MarketInfo(Protocol):
    async def asset_contexts(self) -> Any: ...

    async def liquidations(self, user: str, since_s: float | None = None) -> Any: ...

    async def vault(self, address: str) -> Any: ...


@dataclass
class Sources:
    """Hyperliquid's info API, the reference venues (USD prices) and VALR's tickers."""

    hyperliquid: MarketInfo
    references: Sequence[QuoteSource]
    valr: QuoteSource | None = None
    trades: TradeStream | None = None
    closers: Sequence[Callable[[], Awaitable[None]]] = ()

    async def close(self) -> None:
        for close in self.closers:
            await close()


def configs(settings: SurveillanceSettings) -> tuple[DeviationConfig, CascadeConfig]:
    return (
        DeviationConfig(
            settings.warning_pct,
            settings.high_pct,
            settings.critical_pct,
            settings.max_age_s,
            settings.quorum,
            settings.sustained_s,
        ),
        CascadeConfig(settings.cascade_count, settings.cascade_notional, settings.cascade_window_s),
    )


class Surveillance:
    def __init__(
        self,
        settings: SurveillanceSettings,
        sources: Sources,
        store: SurveillanceStore,
        pairs: Sequence[str] = (),
        on_event: Callable[[SecurityEvent], Awaitable[None] | None] | None = None,
        scorer: AnomalyScorer | None = None,
    ) -> None:
        """`scorer` scores closed 1-minute candles of the traded pairs (`candle`): the ONNX
        anomaly model, its 3-sigma fallback, or nothing (then no market anomaly is ever found)."""
        self.settings = settings
        self.sources = sources
        self.store = store
        # the pairs a reference crossed by `fx` prices: BTCZAR from BTC in USD times USDTZAR
        self.pairs = tuple(p for p in pairs if split_pair(p)[1] and settings.fx.endswith(split_pair(p)[1]))
        self.on_event = on_event
        self.on_check: Callable[[str], None] | None = None  # told each check's name once it ran
        dev_config, cascade_config = configs(settings)
        self.deviations = DeviationTracker(dev_config)
        self.cascades = CascadeDetector(cascade_config)
        self.vaults = VaultHealth(VaultConfig())
        self.book = EventBook()
        self.latest: dict[tuple[str, str], DeviationReading] = {}
        self.latest_cascades: dict[str, CascadeReading] = {}
        self.latest_vault: VaultReading | None = None
        self.counts: Counter[str] = Counter()  # "<source>_errors", "<source>_bad", "<check>_timeouts", "<check>_runs"
        self.last_run: dict[str, float] = {}
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="surveillance")
        self.scorer = scorer or AnomalyScorer(None, None, "no anomaly model given")
        self.stats: dict[str, MarketStats] = {}
        self.latest_anomaly: dict[str, AnomalyScore] = {}
        self._emitting: set[asyncio.Task[None]] = set()
        self.trades: dict[str, Quote] = {}  # the newest Hyperliquid trade per asset
        self._stream: asyncio.Task[None] | None = None
        if sources.trades is not None:
            sources.trades.on_quote = self.on_trade
        self._clock: Clock | None = None

    # schedule ------------------------------------------------------------------------------
    def start(self, clock: Clock) -> None:
        """The three checks as timers on `clock`, first at the next whole interval, and the
        trade stream when there is one."""
        self._clock = clock
        if self.sources.trades is not None and self._stream is None:
            self._stream = asyncio.get_running_loop().create_task(self.sources.trades.run(), name="surveil-trades")
        for name, interval in (
            ("oracle", self.settings.oracle_s),
            ("liquidations", self.settings.liquidations_s),
            ("vault", self.settings.vault_s),
        ):
            now = clock.timestamp()
            start = (math.floor(now / interval) + 1) * interval if math.isfinite(now) else None
            clock.set_timer(f"surveil-{name}", interval, self._timer(name), start_s=start)

    async def restore(self) -> int:
        """The active events the ledger holds (a condition that outlived a restart stays one
        event); how many. A ledger that cannot be read leaves the book empty."""
        loop = asyncio.get_running_loop()
        try:
            page = await loop.run_in_executor(
                self.writer, partial(self.store.ledger.security_events, active=True, limit=500)
            )
        except HeliosError as exc:
            log.warning("surveillance: active events not restored: %s", exc)
            return 0
        events = [rows.event_of(item) for item in page.items]
        self.book.restore(events)
        return len(events)

    def on_trade(self, quote: Quote) -> None:
        current = self.trades.get(quote.asset)
        if current is None or quote.ts >= current.ts:
            self.trades[quote.asset] = quote

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        if self._clock is not None:
            for name in CHECKS:
                self._clock.cancel(f"surveil-{name}")
            self._clock = None

    async def close(self) -> None:
        stream = self._stream
        self.stop()
        if stream is not None:
            await asyncio.gather(stream, return_exceptions=True)
        await asyncio.gather(*self._emitting, return_exceptions=True)
        await self.sources.close()
        await asyncio.get_running_loop().run_in_executor(self.writer, self.store.close)
        self.writer.shutdown(wait=True)

    def _timer(self, name: str) -> Callable[[TimeEvent], Awaitable[None]]:
        async def fire(event: TimeEvent) -> None:
            await self.run(name, event.ts)

        return fire

    async def run(self, name: str, now: float) -> None:
        """One check, cut at the deadline; never raises for what a source did."""
        check = {"oracle": self.check_oracle, "liquidations": self.check_liquidations, "vault": self.check_vault}[name]
        self.counts[f"{name}_runs"] += 1
        try:
            await asyncio.wait_for(check(now), self.settings.deadline_s)
        except TimeoutError:
            self.counts[f"{name}_timeouts"] += 1
            log.warning("surveillance: the %s check passed its %.0f s deadline", name, self.settings.deadline_s)
        self.last_run[name] = now
        if self.on_check is not None:
            self.on_check(name)

    async def _call(self, source: str, work: Awaitable[Any]) -> Any | None:
        try:
            observed = await work
        except HeliosError as exc:  # SourceError: the whole answer was unusable
            self.counts[f"{source}_errors"] += 1
            log.warning("surveillance: %s failed: %s", source, exc)
            return None
        if observed.bad:
            self.counts[f"{source}_bad"] += observed.bad
            log.info("surveillance: %s: %d bad rows (%s)", source, observed.bad, "; ".join(observed.problems[:3]))
        return observed

    # checks --------------------------------------------------------------------------------
    async def check_oracle(self, now: float) -> None:
        """Hyperliquid's oracle and traded prices, and each VALR pair's, against their references."""
        assets = list(self.settings.assets)
        bases = sorted({split_pair(p)[0] for p in self.pairs} | set(assets))
        n = len(self.sources.references)
        calls: list[Awaitable[Any]] = [self._call(HYPERLIQUID, self.sources.hyperliquid.asset_contexts())]
        calls += [self._call(ref.venue, ref.quotes(bases)) for ref in self.sources.references]
        if self.sources.valr is not None and self.pairs:
            calls.append(self._call(VALR, self.sources.valr.quotes([*self.pairs, self.settings.fx])))
        answers = await asyncio.gather(*calls)
        contexts, refs, valr = answers[0], answers[1 : 1 + n], (answers[1 + n] if len(answers) > 1 + n else None)
        by_asset: dict[str, list[Quote]] = {}
        for observed in refs:
            for quote in observed.items if observed is not None else ():
                by_asset.setdefault(quote.asset, []).append(quote)
        config = self.deviations.config
        checked: list[tuple[str, str, DeviationReading]] = []  # (event type, event venue, reading)

        def check(type_: str, label: str, venue: str, asset: str, price: float, ref: deviation.Reference) -> None:
            reading = _named(self.deviations.update(f"{label}:{asset}", price, now, ref), asset)
            self.latest[(label, asset)] = reading
            checked.append((type_, venue, reading))

        oracles = {c.asset: c for c in contexts.items} if contexts is not None else {}
        for asset in assets:
            usd = deviation.reference(by_asset.get(asset, []), now, config)
            ctx = oracles.get(asset)
            if ctx is None:
                self.counts["hyperliquid_missing"] += 1
            else:
                check("oracle_deviation", HYPERLIQUID, HYPERLIQUID, asset, ctx.oracle, usd)
            trade = self.trades.get(asset)  # a perp trading away from the spot markets
            if trade is not None and abs(now - trade.ts) <= config.max_age_s:  # no trade lately: no comparison
                check("trade_deviation", TRADES, HYPERLIQUID, asset, trade.price, usd)
        valr_quotes = {q.asset: q for q in valr.items} if valr is not None else {}
        for pair in self.pairs:
            own = valr_quotes.get(pair)
            if own is None:
                self.counts["valr_missing"] += 1
                continue
            usd = deviation.reference(by_asset.get(split_pair(pair)[0], []), now, config)
            ref = deviation.crossed(usd, valr_quotes.get(self.settings.fx), now, config)
            check("price_deviation", VALR, VALR, pair, own.price, ref)
        out = [rows.deviation_row(r, venue if t != "trade_deviation" else TRADES, t) for t, venue, r in checked]
        events: list[SecurityEvent] = []
        for type_, venue, reading in checked:
            if not reading.valid:
                continue  # no reference: neither starts nor ends a deviation
            event = self.book.observe(type_, venue, reading.asset, deviation.finding(reading, type_, venue), now)
            if event is not None:
                events.append(event)
        await self._emit(out, events)

    async def check_liquidations(self, now: float) -> None:
        since = now - 2 * self.cascades.config.window_s
        answers = await asyncio.gather(
            *(
                self._call(HYPERLIQUID, self.sources.hyperliquid.liquidations(user, since))
                for user in self.settings.users
            )
        )
        out: list[Row] = []
        for observed in answers:
            if observed is not None:
                out += [rows.liquidation_row(liq) for liq in self.cascades.add(observed.items)]
        self.cascades.forget_before(now - 4 * self.cascades.config.window_s)
        self.book.forget_before(now - 3600)
        events: list[SecurityEvent] = []
        watched = set(self.cascades.windows) | {a for (t, _, a) in self.book.active if t == "liquidation_cascade"}
        for asset in sorted(watched):
            reading = self.cascades.check(asset, now)
            self.latest_cascades[asset] = reading
            if reading.count:
                out.append(rows.cascade_row(reading, HYPERLIQUID))
            event = self.book.observe(
                "liquidation_cascade", HYPERLIQUID, asset, cascade.finding(reading, HYPERLIQUID), now
            )
            if event is not None:
                events.append(event)
        await self._emit(out, events)

    async def check_vault(self, now: float) -> None:
        observed = await self._call(HYPERLIQUID, self.sources.hyperliquid.vault(self.settings.vault))
        if observed is None:
            return
        out: list[Row] = []
        events: list[SecurityEvent] = []
        for state in observed.items:
            reading = self.vaults.update(state)
            if reading is None:
                continue
            self.latest_vault = reading
            out.append(rows.vault_row(reading, HYPERLIQUID))
            found = vault.finding(reading, HYPERLIQUID, self.vaults.config)
            event = self.book.observe("vault_anomaly", HYPERLIQUID, reading.vault, found, now)
            if event is not None:
                events.append(event)
        await self._emit(out, events)

    def candle(self, pair: str, bar: Any, now: float) -> None:
        """A closed 1-minute candle of a traded pair (`bar`: ts, open, high, low, close, volume),
        scored by the anomaly model: an anomaly of MEDIUM or worse is a `market_anomaly`
        condition that lasts while the minutes stay anomalous. Cheap and synchronous; an event
        that changes is written in the background."""
        stats = self.stats.setdefault(pair, MarketStats())
        try:
            vector = stats.update(as_datetime(bar.ts), bar.open, bar.high, bar.low, bar.close, bar.volume)
        except ValueError:  # out of order: a restart's backfill overlapping what was seen
            return
        if vector is None:
            return
        score = self.scorer.score(vector)
        self.latest_anomaly[pair] = score
        if score.score is None:
            return  # nothing scored it (a NaN in the sample, or no model): neither starts nor ends one
        found = None
        if score.anomalous and score.severity is not None and score.severity >= Severity.MEDIUM:
            indicators = {"score": score.score, "method": score.method, "features": [float(v) for v in vector]}
            found = Finding("market_anomaly", MARKET, pair, score.severity, score.risk or 0.0, indicators)
        event = self.book.observe("market_anomaly", MARKET, pair, found, now)
        if event is not None:
            task = asyncio.get_running_loop().create_task(self._emit([], [event]))
            self._emitting.add(task)
            task.add_done_callback(self._emitting.discard)

    async def _emit(self, out: list[Row], events: list[SecurityEvent]) -> None:
        out += [rows.event_row(e) for e in events]
        await asyncio.get_running_loop().run_in_executor(self.writer, self.store.write, out)
        for event in events:
            log.log(
                logging.WARNING if event.active else logging.INFO,
                "surveillance: %s %s %s on %s/%s (event %s, score %.0f)",
                "event" if event.active else "ended",
                event.severity,
                event.type,
                event.venue,
                event.asset,
                event.id,
                event.score,
            )
            if self.on_event is not None:
                result = self.on_event(event)
                if result is not None:
                    await result

    # what it means for trading ---------------------------------------------------------------
    def restriction(self, pair: str) -> Restriction:
        return restriction(self.book.active.values(), pair, self.settings.fx)

    def status(self) -> dict[str, Any]:
        return {
            "runs": dict(self.counts),
            "last_run": dict(self.last_run),
            "active_events": len(self.book.active),
            "anomaly_model": self.scorer.model.meta.version if self.scorer.model is not None else None,
            "anomaly_fallback": self.scorer.reason,
            "spool_pending": self.store.pending,
            "dropped": self.store.dropped,
            "ledger_error": self.store.error,
        }


def _named(reading: DeviationReading, asset: str) -> DeviationReading:
    """The tracker keys its onsets by venue and asset; a reading names the asset alone."""
    return replace(reading, asset=asset)
