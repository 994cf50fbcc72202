"""Reconciliation: what VALR says the account holds and did, against what the ledger says
Helios sent and holds. Pure: the kernel's venue fetches both sides and records the outcome.

A mismatch is something only a person can settle: an open order or a recent trade Helios never
sent (someone else trades on the account, or an order was lost), or less of a currency on the
exchange than Helios's positions hold. An order Helios is still following is not a mismatch
while VALR still lists it or has settled it; the status poll reads its fate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from helios_core.trading.enums import PositionSide
from helios_core.trading.position import Position
from helios_live.venues.valr.pairs import PairRules
from helios_live.venues.valr.trading import Balance

TOLERANCE = 1e-8  # of a base currency: VALR's smallest step


def mismatches(
    open_orders: Iterable[dict[str, Any]],
    trades: Iterable[dict[str, Any]],
    balances: dict[str, Balance],
    journalled: set[str],
    positions: Iterable[Position],
    rules: dict[str, PairRules],
) -> list[dict[str, Any]]:
    """Every disagreement, each `{"kind", "key", "pair", "detail"}`; `key` names it for good, so an
    acknowledged one is not raised again. `journalled`: the customer order ids the ledger holds."""
    found: list[dict[str, Any]] = []
    for order in open_orders:
        cid = str(order.get("customerOrderId") or "")
        if cid not in journalled:
            found.append(_one("unknown_open_order", str(order.get("orderId")), order.get("currencyPair"),
                              f"VALR holds open order {order.get('orderId')} (customer id {cid or 'none'}) that"
                              " Helios never sent"))  # fmt: skip
    for trade in trades:
        cid = str(trade.get("customerOrderId") or "")
        if cid not in journalled:
            found.append(_one("unknown_trade", str(trade.get("id")), trade.get("currencyPair"),
                              f"VALR trade {trade.get('id')} ({trade.get('side')} {trade.get('quantity')} at"
                              f" {trade.get('price')}) is of an order Helios never sent"))  # fmt: skip
    held: dict[str, float] = {}
    for position in positions:
        pair = rules.get(position.pair)
        if pair is not None and position.side is PositionSide.LONG:
            held[pair.base] = held.get(pair.base, 0.0) + position.quantity
    for currency, quantity in sorted(held.items()):
        total = balances[currency].total if currency in balances else 0.0
        if total + TOLERANCE < quantity:
            detail = f"Helios's open positions hold {quantity:.8f} {currency}; VALR shows {total:.8f}"
            found.append(_one("balance_short", currency, None, detail))
    return found


def _one(kind: str, key: str, pair: Any, detail: str) -> dict[str, Any]:
    return {"kind": kind, "key": f"{kind}:{key}", "pair": pair, "detail": detail}
