"""The surveillance monitors against the fake markets on loopback: deviations that become events
and end, cascades, vault health, bad answers, and the spool while PostgreSQL is away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from helios_core.surveillance.events import Severity
from helios_live.api.routers.metrics import surveillance_metrics
from helios_live.clock import TestClock
from helios_live.ledger import Ledger
from helios_live.venues.hyperliquid.simulator import FakeMarkets
from tests.ledger_support import Proxy, temporary_database
from tests.surveillance_support import T0, TRACKED, VAULT, calm, monitor

pytestmark = pytest.mark.integration


@pytest.fixture
def markets() -> Iterator[FakeMarkets]:
    with FakeMarkets() as fake:
        fake.set_time(T0)
        calm(fake)
        yield fake


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()
    return ledger


def at(markets: FakeMarkets, ts: float) -> float:
    markets.set_time(ts)
    return ts


def test_an_oracle_deviation_becomes_critical_once_sustained_blocks_btczar_and_ends(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path)
    seen: list[tuple[str, bool]] = []
    surveil.on_event = lambda e: seen.append((e.id, e.active))

    async def run() -> None:
        await surveil.run("oracle", at(markets, T0))
        assert surveil.latest[("hyperliquid", "BTC")].deviation_pct == pytest.approx(0.0)
        assert surveil.latest[("valr", "BTCZAR")].reference == pytest.approx(1_800_000.0)
        markets.set_price("hyperliquid-oracle", "BTC", 101_500.0)  # 1.5 % above the references
        await surveil.run("oracle", at(markets, T0 + 60))
        reading = surveil.latest[("hyperliquid", "BTC")]
        assert reading.severity is Severity.CRITICAL and not reading.sustained and reading.onset == T0 + 60
        assert surveil.restriction("BTCZAR").blocking is None  # not sustained yet: no event
        await surveil.run("oracle", at(markets, T0 + 120))
        blocking = surveil.restriction("BTCZAR").blocking
        assert blocking is not None and blocking.type == "oracle_deviation" and blocking.asset == "BTC"
        assert blocking.first_seen == T0 + 60  # the onset, not the check that found it sustained
        markets.set_price("hyperliquid-oracle", "BTC", 100_000.0)
        await surveil.run("oracle", at(markets, T0 + 180))
        assert surveil.restriction("BTCZAR").blocking is None
        await surveil.close()

    asyncio.run(run())
    assert [active for _, active in seen] == [True, False] and len({i for i, _ in seen}) == 1
    events = ledger.security_events(since=None).items
    assert len(events) == 1 and events[0]["severity"] == "CRITICAL" and events[0]["ended"] is not None
    assert len(ledger.oracle_deviations(limit=100).items) == 4 * 3  # BTC, ETH and BTCZAR at each of 4 checks
    assert surveil.store.pending == 0


def test_a_zar_pair_off_its_crossed_reference_is_a_price_deviation(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path, surveillance_sustained_s=0)
    markets.set_price("valr", "BTCZAR", 1_800_000.0 * 1.007)  # 0.7 %: HIGH

    async def run() -> None:
        await surveil.run("oracle", at(markets, T0))
        await surveil.close()

    asyncio.run(run())
    scaling = surveil.restriction("BTCZAR").scaling
    assert scaling is not None and scaling.type == "price_deviation" and scaling.severity is Severity.HIGH
    assert surveil.restriction("ETHZAR").scaling is None
    gauges = {m.name: m for m in surveillance_metrics(surveil)}
    sample = next(x for x in gauges["helios_surveillance_deviation_pct"].samples if x.labels["asset"] == "BTCZAR")
    assert sample.value == pytest.approx(0.7) and sample.labels["venue"] == "valr"


def test_hyperliquid_trades_off_the_spot_markets_are_a_trade_deviation(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path, surveillance_sustained_s=0)

    async def run() -> None:
        clock = TestClock()
        await clock.advance_to(T0 - 100)
        surveil.start(clock)  # the timers never fire here (the clock stays put); the stream runs
        for _ in range(200):
            if markets.subscribers("BTC"):
                break
            await asyncio.sleep(0.02)
        markets.trade("BTC", 100_600.0, 0.5, ts=T0 - 5)  # 0.6 % above the references: HIGH
        for _ in range(200):
            if "BTC" in surveil.trades:
                break
            await asyncio.sleep(0.02)
        await surveil.run("oracle", at(markets, T0))
        await surveil.close()

    asyncio.run(run())
    assert surveil.trades["BTC"].price == 100_600.0
    reading = surveil.latest[("hyperliquid-trades", "BTC")]
    assert reading.deviation_pct == pytest.approx(0.6) and reading.severity is Severity.HIGH
    assert ("hyperliquid-trades", "ETH") not in surveil.latest  # no ETH trade: nothing to compare
    scaling = surveil.restriction("BTCZAR").scaling
    assert scaling is not None and scaling.type == "trade_deviation"


def test_bad_answers_and_a_stale_reference_are_counted_never_a_crash_nor_an_event(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path, surveillance_sustained_s=0)

    async def run() -> None:
        markets.malformed_next("hyperliquid", "not json")
        markets.fail_next("coinbase", 500)
        await surveil.run("oracle", at(markets, T0))
        markets.freeze("coinbase")  # its answers keep saying T0
        markets.set_price("hyperliquid-oracle", "BTC", 150_000.0)  # huge, but only one fresh reference is left
        await surveil.run("oracle", at(markets, T0 + 600))
        await surveil.close()

    asyncio.run(run())
    assert surveil.counts["hyperliquid_errors"] == 1 and surveil.counts["coinbase_errors"] == 1
    reading = surveil.latest[("hyperliquid", "BTC")]
    assert not reading.valid and reading.stale == 1  # coinbase's quote is 600 s old: dropped, counted
    assert surveil.book.active == {} and ledger.security_events().items == []


def test_five_large_liquidations_one_way_are_a_cascade_and_a_repeated_fill_counts_once(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path)
    for i in range(5):
        markets.add_fill(TRACKED, "BTC", 100_000.0, 0.2, "A", liquidation=True, hash=f"0x{i + 1:064x}", ts=T0 - 60 + i)
    markets.add_fill(TRACKED, "BTC", 100_000.0, 0.2, "B", ts=T0 - 30)  # an ordinary fill

    async def run() -> None:
        await surveil.run("liquidations", at(markets, T0))
        await surveil.run("liquidations", at(markets, T0 + 10))  # the same fills polled again
        await surveil.close()

    asyncio.run(run())
    reading = surveil.latest_cascades["BTC"]
    assert (reading.count, reading.longs, reading.direction, reading.severity) == (5, 5, "long", Severity.HIGH)
    scaling = surveil.restriction("BTCZAR").scaling
    assert scaling is not None and scaling.type == "liquidation_cascade"
    assert [p["count"] for p in ledger.liquidation_patterns().items] == [5, 5]


def test_a_three_sigma_jump_in_the_vault_equity_is_critical(
    markets: FakeMarkets, ledger: Ledger, tmp_path: Path
) -> None:
    surveil = monitor(markets, ledger, tmp_path)
    equity = [1e8 * (1 + 0.001 * ((-1) ** i)) for i in range(14)] + [0.9e8]

    async def run() -> None:
        for i, value in enumerate(equity):
            ts = at(markets, T0 + 300 * i)
            markets.set_vault(VAULT, [(ts, value)], [(ts, value - 1e8)])
            await surveil.run("vault", ts)
        await surveil.close()

    asyncio.run(run())
    assert surveil.latest_vault is not None and surveil.latest_vault.severity is Severity.CRITICAL
    events = ledger.security_events().items
    assert [e["type"] for e in events] == ["vault_anomaly"] and events[0]["score"] >= 70
    assert len(ledger.vault_snapshots(limit=100).items) == len(equity) - 1


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "helios_surveil") as url:
        yield url


def test_rows_wait_in_the_spool_while_postgres_is_away_and_land_in_order_once(
    markets: FakeMarkets, database: str, tmp_path: Path
) -> None:
    Ledger(database).migrate()
    url = make_url(database)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = Ledger(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    surveil = monitor(markets, proxied, tmp_path, surveillance_sustained_s=0)

    async def run() -> None:
        await surveil.run("oracle", at(markets, T0))
        proxy.cut()
        markets.set_price("hyperliquid-oracle", "BTC", 101_500.0)
        for i in range(1, 6):  # five checks without a database, one of them opening an event
            await surveil.run("oracle", at(markets, T0 + 60 * i))
        assert surveil.store.pending > 0 and surveil.store.error
        proxy.restore()
        markets.set_price("hyperliquid-oracle", "BTC", 100_000.0)
        await surveil.run("oracle", at(markets, T0 + 360))  # the spool lands first, then this check
        await surveil.close()

    asyncio.run(run())
    assert surveil.store.pending == 0 and surveil.store.dropped == 0
    ledger = Ledger(database)
    rows = sorted(ledger.oracle_deviations(limit=500).items, key=lambda r: r["id"])
    btc = [r["ts"].timestamp() for r in rows if r["asset"] == "BTC"]
    assert btc == [T0 + 60 * i for i in range(7)]  # every check, in order, once
    events = ledger.security_events().items
    assert len(events) == 1 and events[0]["count"] == 5 and events[0]["ended"] is not None
    # replaying what already landed changes nothing: every row has its uid
    assert surveil.store.written >= len(rows)
