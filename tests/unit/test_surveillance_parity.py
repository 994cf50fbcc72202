"""Surveillance detectors: the streaming implementation and its batch twin agree on random input
(Hypothesis), and the source document's bugs stay fixed (examples)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_core.surveillance import deviation as dev
from helios_core.surveillance.cascade import CascadeConfig, CascadeDetector, cascade_batch, judge
from helios_core.surveillance.deviation import DeviationConfig, DeviationTracker, deviation_batch, reference
from helios_core.surveillance.events import EventBook, Finding, SecurityEvent, Severity, event_id
from helios_core.surveillance.gate import restriction
from helios_core.surveillance.observations import Liquidation, Quote, VaultState
from helios_core.surveillance.vault import VaultConfig, VaultHealth, vault_batch

NAN = math.nan
T0 = 1_700_000_000.0
TOL = 1e-9
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def opt(value: float | None) -> float:
    return NAN if value is None else float(value)


# -- deviation -----------------------------------------------------------------------------------

REF_KINDS = ("ok", "ok", "ok", "ok", "missing", "stale", "future", "zero", "negative", "nan_price", "nan_ts")
FX_KINDS = ("ok", "ok", "ok", "ok", "missing", "stale", "zero", "nan_price")
BAD_PRICES = (NAN, 0.0, -100.0, math.inf)


@dataclass
class DeviationCase:
    config: DeviationConfig
    ts: np.ndarray
    price: np.ndarray
    ref_price: np.ndarray
    ref_ts: np.ndarray
    fx_price: np.ndarray | None
    fx_ts: np.ndarray | None


def _ref_cell(kind: str, level: float, noise: float, age: float, now: float) -> tuple[float, float]:
    price = level * (1 + noise)
    return {
        "ok": (price, now - age),
        "missing": (NAN, NAN),
        "stale": (price, now - 121.0 - age),
        "future": (price, now + 121.0 + age),
        "zero": (0.0, now - age),
        "negative": (-price, now - age),
        "nan_price": (NAN, now - age),
        "nan_ts": (price, NAN),
    }[kind]


@st.composite
def deviation_cases(draw: st.DrawFn) -> DeviationCase:
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 3))
    config = DeviationConfig(quorum=draw(st.integers(1, 3)), sustained_s=draw(st.sampled_from([0.0, 10.0, 30.0])))
    with_fx = draw(st.booleans())
    jumps = st.one_of(
        st.just(0.0), st.floats(0.001, 0.03).flatmap(lambda x: st.sampled_from([x, -x]))
    )  # |jump| 0.1 % .. 3 %
    ts, price = np.empty(n), np.empty(n)
    ref_price, ref_ts = np.empty((n, k)), np.empty((n, k))
    fx_price, fx_ts = np.empty(n), np.empty(n)
    now, level, fx_level, gap = T0, 100.0, 18.0, 0.0
    for i in range(n):
        now += draw(st.sampled_from([0.0, 1.0, 5.0, 10.0, 29.0, 30.0])) + draw(st.floats(0, 20))
        level *= 1 + draw(st.floats(-0.002, 0.002))
        if draw(st.integers(0, 3)) == 0:  # the deviation changes; otherwise it persists
            gap = draw(jumps)
        rate = fx_level if with_fx else 1.0
        price[i] = level * rate * (1 + gap)
        if draw(st.integers(0, 15)) == 0:
            price[i] = draw(st.sampled_from(BAD_PRICES))
        ts[i] = now
        for j in range(k):
            cell = _ref_cell(
                draw(st.sampled_from(REF_KINDS)), level, draw(st.floats(-0.0005, 0.0005)), draw(st.floats(0, 119)), now
            )
            ref_price[i, j], ref_ts[i, j] = cell
        if with_fx:
            kind = draw(st.sampled_from(FX_KINDS))
            fx_price[i], fx_ts[i] = _ref_cell(kind, fx_level, 0.0, draw(st.floats(0, 119)), now)
    return DeviationCase(
        config, ts, price, ref_price, ref_ts, fx_price if with_fx else None, fx_ts if with_fx else None
    )


def stream_deviation(case: DeviationCase, rng: random.Random) -> list[dev.DeviationReading]:
    tracker = DeviationTracker(case.config)
    out = []
    for i, now in enumerate(case.ts.tolist()):
        quotes = [
            Quote(f"venue{j}", "BTC", float(p), float(t))
            for j, (p, t) in enumerate(zip(case.ref_price[i], case.ref_ts[i], strict=True))
            if not (math.isnan(p) and math.isnan(t) and rng.random() < 0.5)  # a missing quote: absent or NaN
        ]
        rng.shuffle(quotes)
        ref = reference(quotes, now, case.config)
        if case.fx_price is not None and case.fx_ts is not None:
            p, t = float(case.fx_price[i]), float(case.fx_ts[i])
            fx = None if math.isnan(p) and math.isnan(t) else Quote("valr", "USDTZAR", p, t)
            ref = dev.crossed(ref, fx, now, case.config)
        out.append(tracker.update("BTCZAR", float(case.price[i]), now, ref))
    return out


@PROPERTY
@given(case=deviation_cases(), rng=st.randoms(use_true_random=False))
def test_deviation_stream_and_batch_agree(case: DeviationCase, rng: random.Random) -> None:
    streamed = stream_deviation(case, rng)

    batch = deviation_batch(case.ts, case.price, case.ref_price, case.ref_ts, case.config, case.fx_price, case.fx_ts)

    for i, r in enumerate(streamed):
        where = f"row {i}: {r}"
        assert close(r.reference, float(batch.reference[i])), where
        assert close(r.deviation_pct, float(batch.deviation_pct[i])), where
        assert int(r.severity or 0) == int(batch.severity[i]), where
        assert close(opt(r.onset), float(batch.onset[i])), where
        assert close(r.duration_s, float(batch.duration_s[i])), where
        assert r.sustained == bool(batch.sustained[i]), where
        assert close(r.risk, float(batch.risk[i])), where
        assert 0.0 <= r.risk <= 100.0, where
        assert r.used == int(batch.used[i]), where


def quotes_at(price: float, now: float) -> list[Quote]:
    return [Quote(v, "BTC", price, now - 1.0) for v in ("binance", "coinbase", "kraken")]


def test_deviation_is_sustained_after_30_s_from_its_onset_and_the_finding_begins_then() -> None:
    config = DeviationConfig()
    tracker = DeviationTracker(config)
    t = T0
    read = [
        tracker.update("BTC", 101.2, now, reference(quotes_at(100.0, now), now, config)) for now in (t, t + 29, t + 30)
    ]

    first, before, after = read
    assert first.severity == Severity.CRITICAL and first.onset == t and not first.sustained
    assert before.duration_s == 29 and not before.sustained and dev.finding(before, "oracle_deviation", "hl") is None
    assert after.sustained
    found = dev.finding(after, "oracle_deviation", "hl")
    assert found is not None and found.severity == Severity.CRITICAL and found.began == t
    assert math.isclose(found.indicators["deviation_pct"], 1.2)


def test_a_missing_reference_is_an_invalid_reading_and_does_not_end_a_deviation() -> None:
    config = DeviationConfig()
    tracker = DeviationTracker(config)
    t = T0
    tracker.update("BTC", 101.2, t, reference(quotes_at(100.0, t), t, config))
    missing = {
        "no quotes": [],
        "NaN": quotes_at(NAN, t + 5),
        "zero": quotes_at(0.0, t + 5),
        "negative": quotes_at(-100.0, t + 5),
        "future": [Quote(v, "BTC", 100.0, t + 5 + 500.0) for v in ("a", "b", "c")],
        "stale": [Quote(v, "BTC", 100.0, t - 500.0) for v in ("a", "b", "c")],
        "one of three (quorum 2)": [Quote("a", "BTC", 100.0, t + 5), Quote("b", "BTC", NAN, t + 5)],
    }

    for name, quotes in missing.items():
        reading = tracker.update("BTC", 101.2, t + 10, reference(quotes, t + 10, config))
        assert not reading.valid, name
        assert reading.severity is None and not reading.sustained and reading.risk == 0.0, name
    assert tracker.update("BTC", NAN, t + 15, reference(quotes_at(100.0, t + 15), t + 15, config)).valid is False
    resumed = tracker.update("BTC", 101.2, t + 30, reference(quotes_at(100.0, t + 30), t + 30, config))

    assert resumed.onset == t and resumed.sustained


def test_risk_is_bounded_and_rises_with_deviation_and_duration() -> None:
    config = DeviationConfig()
    sizes = np.linspace(0.0, 5.0, 101)
    durations = [0.0, 10.0, 30.0, 100.0, 299.0, 300.0, 3_000.0]

    grid = np.array([[dev.risk_score(s, d, config) for d in durations] for s in sizes])

    assert np.all((grid >= 0.0) & (grid <= 100.0))
    assert np.all(np.diff(grid, axis=0) >= 0.0)  # deviation, at each duration
    assert np.all(np.diff(grid[sizes >= config.warning_pct], axis=1) >= 0.0)  # duration, past the warning
    assert grid[sizes == 1.0][0, -1] > grid[sizes == 1.0][0, 0]
    assert dev.risk_score(2.0, 0.0, config) > dev.risk_score(1.0, 0.0, config) > dev.risk_score(0.5, 0.0, config)
    assert dev.risk_score(NAN, 100.0, config) == 0.0


# -- cascade -------------------------------------------------------------------------------------


@st.composite
def cascade_cases(draw: st.DrawFn) -> tuple[CascadeConfig, list[Liquidation], list[float]]:
    config = CascadeConfig(
        min_count=draw(st.integers(1, 6)),
        min_notional=draw(st.sampled_from([0.0, 10_000.0, 50_000.0])),
        window_s=draw(st.sampled_from([30.0, 60.0, 300.0])),
        one_way=draw(st.floats(0.5, 1.0)),
        critical_count=draw(st.integers(0, 20)),
        critical_notional=draw(st.sampled_from([0.0, 200_000.0, 5_000_000.0])),
    )
    p_long = draw(st.floats(0.0, 1.0))
    liqs = []
    for i in range(draw(st.integers(0, 40))):
        price = draw(st.one_of(st.floats(95.0, 105.0), st.sampled_from([NAN, 0.0, -100.0])))
        ts = T0 + draw(st.floats(0, 600).map(lambda x: round(x, 1)))  # round: equal times happen
        tx = draw(st.sampled_from([None, f"0xAB{i:04d}"]))
        liqs.append(
            Liquidation(
                "hl",
                "BTC",
                "long" if draw(st.floats(0, 1)) < p_long else "short",
                price,
                draw(st.floats(1.0, 2_000.0)),
                ts,
                user=draw(st.sampled_from(["0xa", "0xb", "0xc"])),
                tx_hash=tx,
            )
        )
    checks = sorted(T0 + x for x in draw(st.lists(st.floats(0, 700), max_size=15)))
    return config, liqs, checks


def dedup(liqs: list[Liquidation]) -> list[Liquidation]:
    """The detector's identity: tx hash (any case) and user, else user, asset, side, time, price, size."""
    seen, out = set(), []
    for liq in liqs:
        key = (
            ("tx", liq.tx_hash.lower(), liq.user.lower())
            if liq.tx_hash
            else (liq.user.lower(), liq.asset, liq.side, liq.ts, liq.price, liq.size)
        )
        if key not in seen:
            seen.add(key)
            out.append(liq)
    return out


def arrivals(liqs: list[Liquidation], checks: list[float], rng: random.Random) -> list[list[Liquidation]]:
    """What each poll before each check returns: every liquidation up to the check (some a little
    earlier than their time), shuffled, some twice (the duplicate maybe polls later, its tx hash in
    another case), plus junk the detector must ignore."""
    pending = []
    for liq in liqs:
        pending.append((liq.ts - rng.uniform(0, 100), liq))
        if rng.random() < 0.3:
            copy = liq
            if liq.tx_hash and rng.random() < 0.5:
                copy = Liquidation(
                    liq.venue, liq.asset, liq.side, liq.price, liq.size, liq.ts, liq.user, liq.tx_hash.lower()
                )
            pending.append((liq.ts + rng.uniform(-50, 800), copy))
    junk = Liquidation("hl", "BTC", "buy", 100.0, 1e6, T0, "0xj")
    pending += [(T0, junk), (T0, Liquidation("hl", "BTC", "long", 100.0, -1e6, T0, "0xj"))]
    polls = []
    for now in checks:
        batch = [liq for when, liq in pending if when <= now]
        pending = [(when, liq) for when, liq in pending if when > now]
        rng.shuffle(batch)
        polls.append(batch)
    return polls


@PROPERTY
@given(case=cascade_cases(), rng=st.randoms(use_true_random=False))
def test_cascade_stream_and_batch_agree(
    case: tuple[CascadeConfig, list[Liquidation], list[float]], rng: random.Random
) -> None:
    config, liqs, checks = case
    detector = CascadeDetector(config)
    streamed = []
    for now, poll in zip(checks, arrivals(liqs, checks, rng), strict=True):
        cut = len(poll) // 2
        detector.add(poll[:cut])
        detector.add(poll[cut:])
        streamed.append(detector.check("BTC", now))
    # The batch's caller hands it liquidations with a usable price and size (`qualifies`).
    table = [x for x in dedup(liqs) if x.price > 0]

    counts = cascade_batch(
        np.array([x.ts for x in table]),
        np.array([x.side == "long" for x in table], dtype=bool),
        np.array([x.notional for x in table]),
        np.array(checks),
        config,
    )

    for now, s, (longs, shorts, notional) in zip(checks, streamed, counts, strict=True):
        b = judge("BTC", now, longs, shorts, notional, None, config)
        where = f"check {now - T0}: stream {s}, batch {b}"
        assert (s.longs, s.shorts, s.count) == (b.longs, b.shorts, b.count), where
        assert close(s.notional, b.notional), where
        assert (s.severity, s.direction) == (b.severity, b.direction), where
        assert close(s.score, b.score), where


def test_cascade_batch_ignores_an_unusable_fill_like_the_detector() -> None:
    config = CascadeConfig(min_count=1, min_notional=0.0, critical_count=0, critical_notional=0.0)
    zero = Liquidation("hl", "BTC", "short", 0.0, 1.0, T0, "0xa")
    detector = CascadeDetector(config)
    detector.add([zero])

    streamed = detector.check("BTC", T0)
    ((longs, shorts, notional),) = cascade_batch(
        np.array([T0]), np.array([False]), np.array([0.0]), np.array([T0]), config
    )

    assert (streamed.longs, streamed.shorts) == (0, 0)  # the detector: no liquidation, no cascade
    assert (longs, shorts) == (streamed.longs, streamed.shorts)  # the batch: one short, a CRITICAL cascade


# -- vault ---------------------------------------------------------------------------------------


@st.composite
def vault_cases(draw: st.DrawFn) -> tuple[VaultConfig, np.ndarray, np.ndarray]:
    config = VaultConfig(window=draw(st.integers(2, 50)), min_samples=draw(st.integers(2, 20)))
    n = draw(st.integers(2, 80))
    equity, pnl = [100e6], [0.0]
    for _ in range(n - 1):
        shock = draw(st.one_of(st.floats(-0.001, 0.001), st.floats(-0.05, 0.05)))
        change = equity[-1] * shock
        equity.append(equity[-1] + change + draw(st.sampled_from([0.0, 0.0, 1e6, -1e6])))  # flows
        pnl.append(pnl[-1] + change)
    if draw(st.booleans()):  # a flat stretch: std 0 scores 0
        equity[: n // 2] = [100e6] * (n // 2)
        pnl[: n // 2] = [0.0] * (n // 2)
    return config, np.array(equity), np.array(pnl)


@PROPERTY
@given(case=vault_cases(), rng=st.randoms(use_true_random=False))
def test_vault_stream_and_batch_agree(case: tuple[VaultConfig, np.ndarray, np.ndarray], rng: random.Random) -> None:
    config, equity, pnl = case
    health = VaultHealth(config)
    readings = []
    for i, (e, p) in enumerate(zip(equity.tolist(), pnl.tolist(), strict=True)):
        ts = T0 + 3600.0 * i
        if rng.random() < 0.2:  # an unusable snapshot between two good ones
            bad = rng.choice([(NAN, p), (0.0, p), (-e, p), (e, NAN)])
            assert health.update(VaultState("hl", "HLP", *bad, ts - 1)) is None
        readings.append(health.update(VaultState("hl", "HLP", e, p, ts)))
        if rng.random() < 0.2:  # the same snapshot polled again, maybe with a revised value
            assert health.update(VaultState("hl", "HLP", e * rng.uniform(0.5, 2), p, ts - rng.choice([0, 60]))) is None

    scores = vault_batch(equity, pnl, config)

    assert readings[0] is None and math.isnan(scores[0])
    for i, reading in enumerate(readings[1:], start=1):
        assert reading is not None
        assert close(reading.score, float(scores[i])), f"snapshot {i}: stream {reading.score}, batch {scores[i]}"
        assert 0.0 <= reading.score <= 100.0


# -- events and the gate -------------------------------------------------------------------------


def condition(began: float | None = None, severity: Severity = Severity.HIGH, tx: str | None = None) -> Finding:
    return Finding("oracle_deviation", "hl", "BTC", severity, 60.0, {"deviation_pct": 0.6}, began=began, tx_hash=tx)


def test_events_without_a_tx_hash_are_kept_and_deduplicated_by_their_onset_bucket() -> None:
    book = EventBook()

    first = book.observe("oracle_deviation", "hl", "BTC", condition(T0), T0 + 30)
    again = book.observe("oracle_deviation", "hl", "BTC", condition(T0, Severity.CRITICAL), T0 + 40)

    assert first is not None and first.tx_hash is None and first.active and first.first_seen == T0
    assert again is not None and again.id == first.id and again.count == 2
    assert again.peak == Severity.CRITICAL and again.last_seen == T0 + 40
    assert list(book.active.values()) == [again]
    bucket = math.floor(T0 / 60) * 60
    assert event_id(condition(bucket), 0) == event_id(condition(bucket + 59.9), 0)
    assert event_id(condition(bucket), 0) != event_id(condition(bucket + 60), 0)
    other_venue = Finding("oracle_deviation", "binance", "BTC", Severity.HIGH, 60.0, began=bucket)
    assert event_id(other_venue, 0) != event_id(condition(bucket), 0)


def test_the_same_tx_hash_seen_twice_is_one_event() -> None:
    book = EventBook()

    first = book.observe("liquidation", "hl", "BTC", condition(T0, tx="0xABC"), T0)
    second = book.observe("liquidation", "hl", "BTC", condition(T0, tx="0xabc"), T0 + 5)

    assert first is not None and first.tx_hash == "0xabc"
    assert second is None
    assert list(book.seen_tx) == ["0xabc"]


def test_a_cleared_condition_ends_its_event_and_a_later_one_is_a_new_event() -> None:
    book = EventBook()
    first = book.observe("oracle_deviation", "hl", "BTC", condition(T0), T0 + 30)

    ended = book.observe("oracle_deviation", "hl", "BTC", None, T0 + 90)
    nothing = book.observe("oracle_deviation", "hl", "BTC", None, T0 + 100)
    later = book.observe("oracle_deviation", "hl", "BTC", condition(T0 + 200), T0 + 230)

    assert first is not None and ended is not None and later is not None
    assert ended.id == first.id and ended.ended == T0 + 90 and not ended.active
    assert nothing is None
    assert later.active and later.id != first.id and later.count == 1 and later.first_seen == T0 + 200


def test_a_new_condition_in_the_same_minute_as_the_last_is_a_new_event() -> None:
    book = EventBook()
    first = book.observe("oracle_deviation", "hl", "BTC", condition(T0), T0)
    book.observe("oracle_deviation", "hl", "BTC", None, T0 + 10)

    later = book.observe("oracle_deviation", "hl", "BTC", condition(T0 + 20), T0 + 20)

    assert first is not None and later is not None
    assert later.id != first.id


def event(asset: str, severity: Severity, ended: float | None = None, last_seen: float = T0) -> SecurityEvent:
    return SecurityEvent(
        f"{asset}-{severity}-{ended}",
        "oracle_deviation",
        "hl",
        asset,
        severity,
        severity,
        80.0,
        {},
        T0,
        last_seen,
        1,
        ended=ended,
    )


def test_the_gate_blocks_on_critical_scales_on_high_and_ignores_ended_or_unrelated_events() -> None:
    for asset in ("BTCZAR", "BTC", "USDTZAR"):
        gate = restriction([event(asset, Severity.CRITICAL)], "BTCZAR", "USDTZAR")
        assert gate.blocking is not None and gate.blocking.asset == asset and gate.scaling is None
        gate = restriction([event(asset, Severity.HIGH)], "BTCZAR", "USDTZAR")
        assert gate.blocking is None and gate.scaling is not None and gate.scaling.asset == asset

    ignored = [
        event("BTC", Severity.CRITICAL, ended=T0 + 60),
        event("BTCZAR", Severity.HIGH, ended=T0 + 60),
        event("ETH", Severity.CRITICAL),
        event("ETHZAR", Severity.CRITICAL),
        event("BTC", Severity.MEDIUM),
    ]
    gate = restriction(ignored, "BTCZAR", "USDTZAR")
    assert gate.blocking is None and gate.scaling is None

    newest = event("USDTZAR", Severity.CRITICAL, last_seen=T0 + 10)
    gate = restriction([*ignored, event("BTC", Severity.CRITICAL), newest], "BTCZAR", "USDTZAR")
    assert gate.blocking is newest
