"""The surveillance sources' pure parsers: a bad row is counted, never raised, never used."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helios_core.surveillance.observations import Liquidation
from helios_live.venues.hyperliquid.info import (
    parse_all_mids,
    parse_asset_contexts,
    parse_liquidations,
    parse_vault,
    tx_hash,
)
from helios_live.venues.hyperliquid.stream import parse_trades
from helios_live.venues.reference.tickers import parse_binance_book, parse_coinbase_ticker, parse_valr_summary
from helios_live.venues.sources import BadRow, SourceError

USER, OTHER = "0x" + "a" * 40, "0x" + "b" * 40
HASH = "0x" + "ab" * 32


def ctx(oracle: Any = "100.5", mark: Any = "100.4", mid: Any = "100.45", **extra: Any) -> dict[str, Any]:
    return {"oraclePx": oracle, "markPx": mark, "midPx": mid, "funding": "-0.0001", "openInterest": "12.5", **extra}


def contexts(names: list[str], rows: list[Any]) -> list[Any]:
    return [{"universe": [{"name": n, "szDecimals": 5} for n in names]}, rows]


def test_asset_contexts_keep_good_rows_and_count_each_bad_one() -> None:
    body = contexts(
        ["BTC", "ETH", "SOL", "DOGE", "XRP", "ADA", "AVAX"],
        [ctx(), ctx(mid=None), ctx(oracle="NaN"), ctx(mark="0"), ctx(oracle="-1"), {"markPx": "1"}],
    )
    observed = parse_asset_contexts(body, ts=1_700_000_000.0)
    assert [c.asset for c in observed.items] == ["BTC", "ETH"]
    btc = observed.items[0]
    assert (btc.oracle, btc.mark, btc.mid, btc.funding, btc.open_interest) == (100.5, 100.4, 100.45, -0.0001, 12.5)
    assert observed.items[1].mid is None and btc.ts == 1_700_000_000.0
    assert observed.bad == 5  # NaN, 0, -1, missing fields, and AVAX without a context
    assert any("AVAX" in p and "no asset context" in p for p in observed.problems)


def test_asset_contexts_with_a_wrong_top_level_shape_are_a_source_error() -> None:
    shapes: list[Any] = [{"universe": []}, [{"universe": "x"}, []], None]
    for body in shapes:
        with pytest.raises(SourceError):
            parse_asset_contexts(body, ts=1.0)


def test_all_mids_skip_spot_entries_and_count_bad_prices() -> None:
    body = {"BTC": "65000.5", "ETH": "inf", "SOL": "0", "@107": "12.0", "PURR/USDC": "0.2", "XRP": "abc"}
    observed = parse_all_mids(body, ts=5.0)
    assert [(q.asset, q.price, q.kind, q.ts) for q in observed.items] == [("BTC", 65000.5, "mid", 5.0)]
    assert observed.bad == 3


def fill(side: str = "A", liquidation: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "coin": "ETH", "px": "2500.0", "sz": "2.0", "side": side, "time": 1_700_000_000_123,
        "dir": "Close Long", "hash": HASH, "oid": 1, "tid": 2, "crossed": True, "fee": "0.1",
    }  # fmt: skip
    if liquidation is not None:
        row["liquidation"] = liquidation
    return {**row, **extra}


def test_only_liquidation_fills_are_returned_with_the_liquidated_side() -> None:
    detail = {"liquidatedUser": USER, "markPx": "2499.0", "method": "market"}
    body = [
        fill("A", detail),
        fill("B", {**detail}, dir="Close Short"),
        fill("B"),  # an ordinary fill: ignored, not bad
        fill("B", {"liquidatedUser": OTHER, "markPx": 1.0, "method": "backstop"}),  # the liquidator's side
        fill("A", dir="Liquidated Isolated Short", hash="0x" + "0" * 64),
    ]
    observed = parse_liquidations(body, USER)
    assert observed.bad == 0
    sides = [(liq.side, liq.user) for liq in observed.items]
    assert sides == [("long", USER), ("short", USER), ("long", OTHER), ("short", USER)]
    first = observed.items[0]
    assert first == Liquidation("hyperliquid", "ETH", "long", 2500.0, 2.0, 1_700_000_000.123, USER, HASH)
    assert observed.items[-1].tx_hash is None


def test_bad_liquidation_fills_are_counted() -> None:
    detail = {"liquidatedUser": USER, "markPx": "1", "method": "market"}
    body: list[Any] = [
        fill(liquidation=detail, px="NaN"),
        fill(liquidation=detail, sz="-1"),
        fill(liquidation=detail, side="X"),
    ]
    body += [fill(liquidation=detail, time="2023-11-14T22:13:20"), "junk", {"liquidation": detail}]
    observed = parse_liquidations(body, USER)
    assert observed.items == () and observed.bad == 6 and len(observed.problems) == 6


def test_zero_or_missing_hash_is_none() -> None:
    assert tx_hash("0x" + "0" * 64) is None and tx_hash(None) is None and tx_hash("") is None
    assert tx_hash(HASH) == HASH


def portfolio(day: list[list[Any]], pnl: list[list[Any]], all_time: list[list[Any]] | None = None) -> dict[str, Any]:
    windows = [["day", {"accountValueHistory": day, "pnlHistory": pnl, "vlm": "0"}]]
    if all_time is not None:
        windows.append(["allTime", {"accountValueHistory": all_time, "pnlHistory": pnl, "vlm": "0"}])
    return {"name": "HLP", "vaultAddress": USER, "portfolio": windows}


def test_vault_equity_is_the_latest_day_point() -> None:
    body = portfolio([[1_000_000, "100.0"], [3_000_000, "130.5"], [2_000_000, "120.0"]], [[3_000_000, "-4.5"]])
    (state,) = parse_vault(body, USER).items
    assert (state.equity, state.pnl, state.ts, state.vault) == (130.5, -4.5, 3000.0, USER)


def test_vault_falls_back_to_all_time_and_counts_bad_answers() -> None:
    fallback = parse_vault(portfolio([], [[1_000, "2"]], all_time=[[1_000, "50"]]), USER)
    assert fallback.items[0].equity == 50.0
    for body in (portfolio([[1_000, "NaN"]], [[1_000, "1"]]), portfolio([[1_000, "0"]], [[1_000, "1"]]), {}, None):
        observed = parse_vault(body, USER)
        assert observed.items == () and observed.bad == 1
    with pytest.raises(SourceError):
        parse_vault([1, 2], USER)


def test_reference_tickers() -> None:
    quote = parse_binance_book("BTC", {"symbol": "BTCUSDT", "bidPrice": "99.0", "askPrice": "101.0"}, ts=7.0)
    assert (quote.price, quote.ts, quote.kind) == (100.0, 7.0, "mid")
    coinbase = parse_coinbase_ticker("BTC", {"price": "65000.1", "time": "2026-01-02T03:04:05.123456789Z"})
    assert coinbase.price == 65000.1 and coinbase.ts == pytest.approx(1767323045.123456)
    valr = parse_valr_summary(
        "BTCZAR", {"currencyPair": "BTCZAR", "lastTradedPrice": "1200000", "created": "2026-01-02T03:04:05.123Z"}
    )
    assert (valr.venue, valr.asset, valr.price) == ("valr", "BTCZAR", 1_200_000.0)


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (lambda b: parse_binance_book("BTC", b, 1.0), {"bidPrice": "NaN", "askPrice": "1"}),
        (lambda b: parse_binance_book("BTC", b, 1.0), {"bidPrice": "2", "askPrice": "1"}),
        (lambda b: parse_binance_book("BTC", b, 1.0), {"code": -1121, "msg": "Invalid symbol."}),
        (lambda b: parse_coinbase_ticker("BTC", b), {"price": "1", "time": "2026-01-02T03:04:05"}),
        (lambda b: parse_coinbase_ticker("BTC", b), {"price": "-1", "time": "2026-01-02T03:04:05Z"}),
        (lambda b: parse_valr_summary("BTCZAR", b), {"lastTradedPrice": "1", "created": "2026-01-02 03:04:05"}),
        (
            lambda b: parse_valr_summary("BTCZAR", b),
            {"currencyPair": "ETHZAR", "lastTradedPrice": "1", "created": "2026-01-02T03:04:05Z"},
        ),
    ],
)
def test_bad_tickers_are_bad_rows(parse: Any, body: dict[str, Any]) -> None:
    with pytest.raises(BadRow):
        parse(body)


def test_trades_messages() -> None:
    trade = {"coin": "BTC", "side": "B", "px": "65000.0", "sz": "0.1", "time": 1_700_000_000_500, "hash": HASH}
    observed = parse_trades(json.dumps({"channel": "trades", "data": [trade, {**trade, "px": "NaN"}]}))
    assert observed is not None and observed.bad == 1
    assert [(q.asset, q.price, q.ts, q.kind) for q in observed.items] == [("BTC", 65000.0, 1_700_000_000.5, "last")]
    assert parse_trades(json.dumps({"channel": "subscriptionResponse", "data": {}})) is None
    assert parse_trades(json.dumps({"channel": "pong"})) is None
    for raw in ("{not json", "[1]", json.dumps({"channel": "trades", "data": "x"})):
        malformed = parse_trades(raw)
        assert malformed is not None and malformed.bad == 1 and malformed.items == ()
