"""The fake VALR server itself: it must refuse what VALR refuses, or the client's tests prove
nothing. Signed by hand here (the published rule), not by the client under test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from helios_live.venues.valr.signing import signature
from helios_live.venues.valr.simulator.fake import FakeValr

KEY, SECRET = "fake-key-0123456789", "fake-secret-0123456789abcdef"  # noqa: S105 -- a test secret


@pytest.fixture
def fake() -> Iterator[FakeValr]:
    with FakeValr(api_key=KEY, api_secret=SECRET) as server:
        yield server


def _send(fake: FakeValr, verb: str, path: str, body: dict[str, object] | None = None, **change: str) -> httpx.Response:
    text = json.dumps(body) if body is not None else ""
    stamp = change.get("timestamp", str(int(time.time() * 1000)))
    headers = {
        "X-VALR-API-KEY": change.get("key", KEY),
        "X-VALR-TIMESTAMP": stamp,
        "X-VALR-SIGNATURE": change.get("signature", signature(SECRET, int(stamp), verb, path, text)),
        "Content-Type": "application/json",
    }
    return httpx.request(verb, f"{fake.url}{path}", content=text or None, headers=headers)


def test_only_a_fresh_signature_of_the_exact_request_is_accepted(fake: FakeValr) -> None:
    assert _send(fake, "GET", "/v1/account/balances").status_code == 200
    stale = str(int((time.time() - 60) * 1000))
    refusals = [
        _send(fake, "GET", "/v1/account/balances", key="someone-else"),
        _send(fake, "GET", "/v1/account/balances", signature="0" * 128),
        _send(
            fake,
            "GET",
            "/v1/account/balances",
            timestamp=stale,
            signature=signature(SECRET, int(stale), "GET", "/v1/account/balances"),
        ),  # fmt: skip
        # signed for another path: the signature covers the path and its query
        _send(
            fake,
            "GET",
            "/v1/account/tradehistory?limit=5",
            signature=signature(SECRET, int(time.time() * 1000), "GET", "/v1/account/tradehistory"),
        ),  # fmt: skip
    ]
    assert [r.status_code for r in refusals] == [401, 401, 401, 401]
    assert "expired" in refusals[2].json()["message"] and refusals[1].json()["code"] == -11


def test_a_market_buy_walks_the_book_pays_its_fee_in_base_and_moves_the_balances(fake: FakeValr) -> None:
    before = fake.balances()
    body = {"side": "BUY", "pair": "BTCZAR", "baseAmount": "0.08", "customerOrderId": "c1"}
    assert _send(fake, "POST", "/v1/orders/market", body).status_code == 202
    deadline = time.monotonic() + 5
    while not fake.orders_by_customer_id("c1") or fake.orders_by_customer_id("c1")[0]["orderStatusType"] != "Filled":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    trades = [t for t in fake.trades() if t["customerOrderId"] == "c1"]
    assert len(trades) == 2 and all(t["feeCurrency"] == "BTC" for t in trades)  # two levels of 0.05
    spent = sum(float(t["price"]) * float(t["quantity"]) for t in trades)
    fee = sum(float(t["fee"]) for t in trades)
    after = fake.balances()
    assert after["ZAR"] == pytest.approx(before["ZAR"] - spent)
    assert after["BTC"] == pytest.approx(before["BTC"] + 0.08 - fee) and fee == pytest.approx(0.08 * 0.0035)


def test_a_customer_order_id_is_taken_once_and_bad_orders_are_refused(fake: FakeValr) -> None:
    body = {"side": "SELL", "pair": "BTCZAR", "baseAmount": "0.001", "customerOrderId": "once"}
    assert _send(fake, "POST", "/v1/orders/market", body).status_code == 202
    again = _send(fake, "POST", "/v1/orders/market", body)
    assert again.status_code == 400 and "Duplicate" in again.json()["message"]
    assert len(fake.orders_by_customer_id("once")) == 1
    for bad in ({"baseAmount": "0.00001"}, {"baseAmount": "0.000000001"}, {"pair": "NOPEZAR"}, {"side": "HOLD"}):
        assert _send(fake, "POST", "/v1/orders/market", body | bad | {"customerOrderId": "x"}).status_code == 400


def test_limit_orders_follow_their_time_in_force_and_cancel_all_clears_them(fake: FakeValr) -> None:
    def limit(cid: str, price: str, tif: str, post_only: bool = False) -> str:
        body = {"side": "BUY", "quantity": "0.01", "price": price, "pair": "BTCZAR", "postOnly": post_only,
                "customerOrderId": cid, "timeInForce": tif}  # fmt: skip
        assert _send(fake, "POST", "/v1/orders/limit", body).status_code == 202
        time.sleep(0.1)
        return str(fake.orders_by_customer_id(cid)[0]["orderStatusType"])

    assert limit("rest", "1000000", "GTC") == "Placed"  # below the asks: it rests
    assert limit("cross", "1300000", "GTC", post_only=True) == "Failed"  # post-only would take
    assert limit("ioc", "1000000", "IOC") == "Cancelled"
    assert limit("fok", "1300000", "FOK") == "Filled"
    assert [o["customerOrderId"] for o in fake.open_orders()] == ["rest"]
    cancelled = _send(fake, "DELETE", "/v1/orders")
    assert cancelled.json() == [
        {"orderId": fake.orders_by_customer_id("rest")[0]["orderId"], "customerOrderId": "rest"}
    ]
    assert not fake.open_orders()


def test_faults_on_command(fake: FakeValr) -> None:
    fake.fail_next(429, retry_after_s=1.5)
    limited = _send(fake, "GET", "/v1/orders/open")
    assert limited.status_code == 429 and limited.headers["x-valr-ratelimited"] == "true"
    assert limited.headers["retry-after"] == "1.5"
    fake.fail_next(503)
    assert _send(fake, "GET", "/v1/orders/open").status_code == 503
    fake.reject_next("Insufficient Balance")
    refused = _send(fake, "POST", "/v1/orders/market", {"side": "BUY", "pair": "BTCZAR", "baseAmount": "0.001",
                                                         "customerOrderId": "r"})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["message"] == "Insufficient Balance"
    assert _send(fake, "GET", "/v1/orders/BTCZAR/customerorderid/r").status_code == 404
