"""Hyperliquid's info endpoint (`POST {base}/info`, a JSON body naming the request `type`): asset
contexts, mids, a user's liquidation fills and a vault's equity, parsed into surveillance
observations.

The parsers are pure functions of the decoded answer; `HyperliquidInfo` only fetches. A row that
cannot be used is counted in `bad`; an answer whose top-level shape is wrong raises `SourceError`.
"""

from __future__ import annotations

from typing import Any

from helios_core.surveillance.observations import AssetContext, Liquidation, Quote, VaultState
from helios_live.venues.sources import (
    BadRow,
    HttpSource,
    Observed,
    SourceError,
    Tally,
    epoch_ms,
    number,
    positive,
    require,
)

VENUE = "hyperliquid"
PERIODS = ("day", "allTime")  # the portfolio window whose latest point is the vault's equity


def parse_asset_contexts(body: Any, ts: float) -> Observed[AssetContext]:
    """`metaAndAssetCtxs`: `[{"universe": [{"name": ...}, ...]}, [ctx, ...]]`, zipped by index.
    A universe entry without a context (or a context without an entry) is bad."""
    if not (isinstance(body, list) and len(body) >= 2 and isinstance(body[0], dict)):
        raise SourceError("metaAndAssetCtxs: not [meta, contexts]")
    universe, contexts = body[0].get("universe"), body[1]
    if not isinstance(universe, list) or not isinstance(contexts, list):
        raise SourceError("metaAndAssetCtxs: universe or contexts is not a list")
    tally: Tally[AssetContext] = Tally()
    for index, meta in enumerate(universe):
        name = meta.get("name") if isinstance(meta, dict) else None
        label = name if isinstance(name, str) else f"#{index}"
        if index >= len(contexts):
            tally.reject(f"{label}: no asset context")
            continue
        try:
            if not isinstance(name, str) or not name:
                raise BadRow("universe entry has no name")
            tally.keep(_context(name, contexts[index], ts))
        except BadRow as exc:
            tally.reject(f"{label}: {exc}")
    for index in range(len(universe), len(contexts)):
        tally.reject(f"#{index}: asset context without a universe entry")
    return tally.done()


def _context(name: str, ctx: Any, ts: float) -> AssetContext:
    if not isinstance(ctx, dict):
        raise BadRow("asset context is not an object")
    mid = ctx.get("midPx")  # null when the book is one-sided
    return AssetContext(
        asset=name,
        oracle=positive(require(ctx, "oraclePx"), "oraclePx"),
        mark=positive(require(ctx, "markPx"), "markPx"),
        mid=None if mid is None else positive(mid, "midPx"),
        funding=number(require(ctx, "funding"), "funding"),
        open_interest=_non_negative(require(ctx, "openInterest"), "openInterest"),
        ts=ts,
    )


def _non_negative(raw: object, name: str) -> float:
    value = number(raw, name)
    if value < 0:
        raise BadRow(f"{name} is negative: {raw!r}")
    return value


def parse_all_mids(body: Any, ts: float) -> Observed[Quote]:
    """`allMids`: coin -> mid price string. Spot entries ("@107", "PURR/USDC") are skipped and
    not counted: they are not perpetuals."""
    if not isinstance(body, dict):
        raise SourceError("allMids: not an object")
    tally: Tally[Quote] = Tally()
    for coin, raw in body.items():
        if not isinstance(coin, str) or coin.startswith("@") or "/" in coin:
            continue
        try:
            tally.keep(Quote(VENUE, coin, positive(raw, "mid"), ts, "mid"))
        except BadRow as exc:
            tally.reject(f"{coin}: {exc}")
    return tally.done()


def parse_liquidations(body: Any, user: str) -> Observed[Liquidation]:
    """`userFills` / `userFillsByTime` for `user`: only the liquidation fills, newest first as
    given. A fill is a liquidation when it carries a `liquidation` object (`liquidatedUser`,
    `markPx`, `method`) or its `dir` starts with "Liquidated". The side is the liquidated
    position's: on the liquidated user's own fill a sell ("A") closed a long. On a counterparty's
    fill (the backstop liquidator's, `liquidatedUser` is someone else) the side is the opposite."""
    if not isinstance(body, list):
        raise SourceError("userFills: not a list")
    tally: Tally[Liquidation] = Tally()
    for index, fill in enumerate(body):
        if not isinstance(fill, dict):
            tally.reject(f"#{index}: fill is not an object")
            continue
        detail, direction = fill.get("liquidation"), fill.get("dir")
        by_dir = isinstance(direction, str) and direction.startswith("Liquidated")
        if not isinstance(detail, dict) and not by_dir:
            continue  # an ordinary fill: not a liquidation, not bad
        try:
            tally.keep(_liquidation(fill, detail if isinstance(detail, dict) else {}, user))
        except BadRow as exc:
            tally.reject(f"{fill.get('coin', '#' + str(index))}: {exc}")
    return tally.done()


def _liquidation(fill: dict[str, Any], detail: dict[str, Any], user: str) -> Liquidation:
    coin = require(fill, "coin")
    if not isinstance(coin, str) or not coin:
        raise BadRow("coin is not a name")
    fill_side = require(fill, "side")
    if fill_side not in ("A", "B"):
        raise BadRow(f"side is not A or B: {fill_side!r}")
    victim = detail.get("liquidatedUser")
    victim = victim if isinstance(victim, str) and victim else user
    direction = fill.get("dir")
    if isinstance(direction, str) and direction.startswith("Liquidated") and direction.split()[-1] in ("Long", "Short"):
        side = direction.split()[-1].lower()
    else:
        sold = fill_side == "A"
        own = victim.lower() == user.lower()
        side = "long" if sold == own else "short"
    return Liquidation(
        venue=VENUE,
        asset=coin,
        side=side,
        price=positive(require(fill, "px"), "px"),
        size=positive(require(fill, "sz"), "sz"),
        ts=epoch_ms(require(fill, "time"), "time"),
        user=victim,
        tx_hash=tx_hash(fill.get("hash")),
    )


def tx_hash(raw: object) -> str | None:
    """The fill's transaction hash, or None for a missing or all-zero one (0x000...0)."""
    if not isinstance(raw, str):
        return None
    digits = raw.lower().removeprefix("0x")
    return raw if digits.strip("0") else None


def parse_vault(body: Any, address: str) -> Observed[VaultState]:
    """`vaultDetails`: equity is the latest point of the `portfolio` "day" window's
    `accountValueHistory` (falling back to "allTime"), pnl the latest point of its `pnlHistory`,
    ts the equity point's time. An unknown vault (a null answer) is one bad answer."""
    if body is None:
        return Observed(bad=1, problems=(f"{address}: no such vault",))
    if not isinstance(body, dict):
        raise SourceError("vaultDetails: not an object")
    tally: Tally[VaultState] = Tally()
    try:
        tally.keep(_vault(body, address))
    except BadRow as exc:
        tally.reject(f"{address}: {exc}")
    return tally.done()


def _vault(body: dict[str, Any], address: str) -> VaultState:
    portfolio = require(body, "portfolio")
    if not isinstance(portfolio, list):
        raise BadRow("portfolio is not a list")
    windows = {
        entry[0]: entry[1]
        for entry in portfolio
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict)
    }
    for period in PERIODS:
        window = windows.get(period)
        if window and window.get("accountValueHistory"):
            ts, equity = _latest(window.get("accountValueHistory"), "accountValueHistory")
            _, pnl = _latest(window.get("pnlHistory"), "pnlHistory")
            if equity <= 0:
                raise BadRow(f"equity is not above zero: {equity}")
            return VaultState(VENUE, address, equity, pnl, ts)
    raise BadRow(f"no {' or '.join(PERIODS)} accountValueHistory")


def _latest(points: object, name: str) -> tuple[float, float]:
    if not isinstance(points, list) or not points:
        raise BadRow(f"{name} is empty")
    parsed = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2):
            raise BadRow(f"{name} point is not [ms, value]: {point!r}")
        parsed.append((epoch_ms(point[0], name), number(point[1], name)))
    return max(parsed)


class HyperliquidInfo(HttpSource):
    """Hyperliquid's public info endpoint. `now` stamps answers that carry no time of their own
    (asset contexts and mids are as of the moment the answer arrived)."""

    venue = VENUE

    async def _info(self, body: dict[str, Any]) -> Any:
        status, answer = await self._request("POST", "/info", body=body)
        if status != 200:
            raise SourceError(f"info {body['type']}: HTTP {status}")
        return answer

    async def asset_contexts(self) -> Observed[AssetContext]:
        """Oracle, mark and mid price, funding and open interest of every perpetual."""
        answer = await self._info({"type": "metaAndAssetCtxs"})
        return parse_asset_contexts(answer, self.now())

    async def all_mids(self) -> Observed[Quote]:
        """The mid price of every perpetual (kind "mid")."""
        answer = await self._info({"type": "allMids"})
        return parse_all_mids(answer, self.now())

    async def liquidations(self, user: str, since_s: float | None = None) -> Observed[Liquidation]:
        """`user`'s liquidation fills (all recent ones, or those at or after `since_s`)."""
        if since_s is None:
            body: dict[str, Any] = {"type": "userFills", "user": user}
        else:
            body = {"type": "userFillsByTime", "user": user, "startTime": int(since_s * 1000)}
        return parse_liquidations(await self._info(body), user)

    async def vault(self, address: str) -> Observed[VaultState]:
        """The vault's latest equity and cumulative P&L."""
        answer = await self._info({"type": "vaultDetails", "vaultAddress": address})
        return parse_vault(answer, address)
