"""The VALR message parser: typed events out, every bad message rejected and counted, never a crash."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_core.market import Book, Bucket, MarketSummary, TradeTick
from helios_core.numbers import strict_number
from helios_live.data.recorded import MarketSummaries, Recorded, books_from_binance_depth, timeline
from helios_live.venues.valr.wire import (
    Control,
    Parser,
    book_message,
    bucket_message,
    summary_message,
    trade_message,
)
from tests.conftest import sample, shared_data

NOW = 1_700_000_000.0
PAIRS = ("BTCZAR", "ETHZAR")


def parser() -> Parser:
    return Parser(PAIRS, now=lambda: NOW)


def trade(**data: Any) -> dict[str, Any]:
    body = {"price": "9500.5", "quantity": "0.001", "currencyPair": "BTCZAR", "tradedAt": "2023-11-14T22:13:15.393Z"}
    body.update(takerSide="buy", id="t1")
    return {"type": "NEW_TRADE", "currencyPairSymbol": "BTCZAR", "data": {**body, **data}}


def bucket(**data: Any) -> dict[str, Any]:
    body = {"currencyPairSymbol": "ETHZAR", "bucketPeriodInSeconds": 60, "startTime": "2023-11-14T22:13:00Z"}
    body.update(open="100", high="110", low="95", close="105", volume="2.5")
    return {"type": "NEW_TRADE_BUCKET", "currencyPairSymbol": "ETHZAR", "data": {**body, **data}}


def summary(**data: Any) -> dict[str, Any]:
    body = {"currencyPairSymbol": "BTCZAR", "askPrice": "9501", "bidPrice": "9499", "lastTradedPrice": "9500"}
    body.update(created="2023-11-14T22:13:16.000Z", baseVolume="1.2")
    return {"type": "MARKET_SUMMARY_UPDATE", "currencyPairSymbol": "BTCZAR", "data": {**body, **data}}


def book(**data: Any) -> dict[str, Any]:
    asks = [{"side": "sell", "quantity": "0.5", "price": "9501", "currencyPair": "BTCZAR", "orderCount": 1}]
    bids = [{"side": "buy", "quantity": "0.7", "price": "9499", "currencyPair": "BTCZAR", "orderCount": 2}]
    body = {"Asks": asks, "Bids": bids, "LastChange": "2023-11-14T22:13:16.100Z", "SequenceNumber": 7}
    return {"type": "AGGREGATED_ORDERBOOK_UPDATE", "currencyPairSymbol": "BTCZAR", "data": {**body, **data}}


def test_each_event_type_parses_into_its_typed_event() -> None:
    p = parser()

    t, b, s, o = (p.parse(json.dumps(m)) for m in (trade(), bucket(), summary(), book()))

    assert t == TradeTick("BTCZAR", 1_699_999_995.393, 9500.5, 0.001, True, "t1")
    assert b == Bucket("ETHZAR", 1_699_999_980, 60, 100.0, 110.0, 95.0, 105.0, 2.5)
    assert isinstance(s, MarketSummary) and (s.bid, s.ask, s.last) == (9499.0, 9501.0, 9500.0)
    assert isinstance(o, Book) and o.bids == ((9499.0, 0.7),) and o.asks == ((9501.0, 0.5),)
    assert sum(p.accepted.values()) == 4 and not p.rejected


def test_control_messages_are_recognised_not_rejected() -> None:
    p = parser()

    assert p.parse('{"type":"PONG"}') == Control("PONG")
    assert p.parse('{"type":"SUBSCRIBED","subscriptions":[]}') == Control("SUBSCRIBED")
    assert not p.rejected


def test_invalid_messages_are_rejected_with_their_reason() -> None:
    cases = {
        "not_json": b"\x00\xffnot json",
        "not_object": "[1, 2]",
        "unknown_type": json.dumps({"type": "SOMETHING_NEW", "data": {}}),
        "unknown_pair": json.dumps({**trade(), "currencyPairSymbol": "DOGEZAR"}),
        "non_positive": json.dumps(trade(price="-1")),
        "bad_number": json.dumps(trade(quantity="NaN")),
        "bad_timestamp": json.dumps(trade(tradedAt="2999-01-01T00:00:00Z")),
        "bad_side": json.dumps(trade(takerSide="up")),
        "inconsistent": json.dumps(bucket(high="90")),
        "crossed_book": json.dumps(summary(bidPrice="9600")),
        "missing_field": json.dumps({"type": "NEW_TRADE", "currencyPairSymbol": "BTCZAR"}),
        "malformed": json.dumps({**trade(), "data": {"price": "1"}}),
    }
    for reason, raw in cases.items():
        p = parser()
        assert p.parse(raw) is None, reason
        assert dict(p.rejected) == {reason: 1}, reason


def _mutate(message: dict[str, Any], rng: random.Random) -> Any:
    """A valid message damaged the way wires, bugs and attackers damage them."""
    choice = rng.randrange(9)
    data = dict(message["data"])
    key = rng.choice(sorted(data))
    junk = rng.choice([None, -1, 0, 1e308, "NaN", "Infinity", "-0", "", "abc", [], {}, True, "1e999", 2**70])
    if choice == 0:
        del data[key]
    elif choice == 1:
        data[key] = junk
    elif choice == 2:
        return json.dumps({**message, "data": data})[: rng.randrange(1, 60)]  # truncated
    elif choice == 3:
        return {**message, "type": rng.choice(["", "new_trade", None, 5, "NEW_TRADE "])}
    elif choice == 4:
        return {**message, "currencyPairSymbol": rng.choice(["", "btczar", None, "BTC/ZAR", 7])}
    elif choice == 5:
        return {**message, "data": junk}
    elif choice == 6:
        data[key] = rng.choice(["1970-01-01T00:00:00Z", "2023-13-40T25:61:00Z", "2023-11-14T22:13:15+02:00"])
    elif choice == 7:
        return rng.choice([json.dumps(data), "null", "1", '"text"', "{" * 2000, bytes(rng.randbytes(40))])
    return {**message, "data": data}


def _check(event: object) -> None:
    if isinstance(event, TradeTick):
        assert event.price > 0 and event.quantity > 0 and math.isfinite(event.price) and event.pair in PAIRS
        assert 1_230_940_800 <= event.ts <= NOW + 300
    elif isinstance(event, Bucket):
        assert 0 < event.low <= min(event.open, event.close) <= max(event.open, event.close) <= event.high
        assert event.volume >= 0 and event.start % 60 == 0
    elif isinstance(event, Book):
        assert all(p > 0 and q > 0 for p, q in event.bids + event.asks)


def test_ten_thousand_mutated_messages_never_crash_and_all_are_counted() -> None:
    rng = random.Random(20261121)  # noqa: S311 -- a seeded fuzzer, not cryptography
    p = parser()
    templates = [trade(), bucket(), summary(), book()]
    n = 12_000
    for _ in range(n):
        damaged = _mutate(rng.choice(templates), rng)
        raw = damaged if isinstance(damaged, str | bytes) else json.dumps(damaged)
        _check(p.parse(raw))

    assert sum(p.accepted.values()) + sum(p.rejected.values()) == n
    assert sum(p.rejected.values()) > n // 2  # most damage is caught, and every catch is counted


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
fields = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["NEW_TRADE", "NEW_TRADE_BUCKET", "MARKET_SUMMARY_UPDATE", "AGGREGATED_ORDERBOOK_UPDATE"]
        )
    },
    optional={"currencyPairSymbol": st.sampled_from([*PAIRS, "XRPZAR", ""]), "data": json_values},
)


@settings(max_examples=1500, deadline=None)
@given(message=st.one_of(fields, json_values), raw=st.binary(max_size=64))
def test_random_structures_and_bytes_never_crash(message: Any, raw: bytes) -> None:
    p = parser()

    _check(p.parse(json.dumps(message)))
    _check(p.parse(raw))

    assert sum(p.accepted.values()) + sum(p.rejected.values()) == 2


def test_every_event_of_a_recorded_timeline_written_in_valr_format_reads_back_unchanged() -> None:
    """What the simulator sends is what a replay hands the kernel directly: the parity of the
    two paths starts here."""
    trades = sample("XRP-ETH_trades_2019-10.parquet").head(3000)
    candles = sample("XRP-ETH_1m_2019-10.parquet").head(300)
    books = books_from_binance_depth(
        shared_data("orderbook/BTCUSDT_depth_snapshot_2022-11-01.csv"),
        shared_data("orderbook/BTCUSDT_depth_updates_2022-11-01.csv"),
        "BTCUSDT",
    )
    recorded = Recorded(trades={"XRPETH": trades}, candles={"XRPETH": candles})
    summaries = MarketSummaries(recorded)
    wire = Parser(("XRPETH", "BTCUSDT"), now=lambda: 2e9)
    events = [t.event for t in timeline(recorded, start=trades["ts"].iloc[0].timestamp())]
    events += [t.event for t in timeline(Recorded(), {"BTCUSDT": books}, start=books[0].ts or 0.0)]

    def written(event: Any) -> str:
        if isinstance(event, TradeTick):
            return trade_message(event)
        if isinstance(event, Bucket):
            return bucket_message(event)
        if isinstance(event, Book):
            return book_message(event, 1)
        figures = summaries.figures(event.pair, event.ts)
        assert figures is not None
        return summary_message(event, figures)

    kinds = {type(e).__name__ for e in events}
    assert kinds == {"TradeTick", "Bucket", "MarketSummary", "Book"}
    assert all(wire.parse(written(e)) == e for e in events) and len(events) > 4000
    assert not wire.rejected


@pytest.mark.parametrize(
    "price", ["3_7000", "1e300", " 9500", "9500 ", "inf", "NaN", "0x10", "9,500", "", "1e16", "\u0663\u0667"]
)
def test_a_number_is_plain_decimal_text_finite_and_bounded(price: str) -> None:
    p = parser()

    assert p.parse(json.dumps(trade(price=price))) is None
    assert p.rejected == {"bad_number": 1}


@pytest.mark.parametrize(("text", "value"), [("9500.5", 9500.5), ("0.00012", 0.00012), ("1e-8", 1e-8), (42, 42.0)])
def test_plain_numbers_still_parse(text: object, value: float) -> None:
    assert strict_number(text) == value


def test_a_json_integer_too_big_for_a_float_is_refused_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="out of range"):
        strict_number(10**400)
    p = parser()
    assert p.parse(json.dumps(trade(price=10**400))) is None
    assert p.rejected == {"bad_number": 1}
