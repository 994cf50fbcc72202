"""Public tickers of the reference venues (Binance, Coinbase Exchange, VALR), one request per
asset, as `Quote`s in canonical asset names.

An asset the venue does not know (Binance 400 -1121, Coinbase 404, VALR 4xx) or a ticker that
cannot be used is one bad answer; a transport failure, 429 or 5xx on any request raises
`SourceError` for the whole call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helios_core.surveillance.observations import Quote
from helios_live.venues.sources import BadRow, HttpSource, Observed, Tally, iso_time, positive, require


def parse_binance_book(asset: str, body: Any, ts: float) -> Quote:
    """`/api/v3/ticker/bookTicker`: the mid of `bidPrice` and `askPrice` (kind "mid"). The answer
    carries no exchange time, so `ts` is when it arrived."""
    bid = positive(require(body, "bidPrice"), "bidPrice")
    ask = positive(require(body, "askPrice"), "askPrice")
    if ask < bid:
        raise BadRow(f"crossed book: bid {bid} > ask {ask}")
    return Quote("binance", asset, (bid + ask) / 2, ts, "mid")


def parse_coinbase_ticker(asset: str, body: Any) -> Quote:
    """`/products/{id}/ticker`: the last trade's `price` at its `time` (kind "last")."""
    price = positive(require(body, "price"), "price")
    return Quote("coinbase", asset, price, iso_time(require(body, "time"), "time"), "last")


def parse_valr_summary(pair: str, body: Any) -> Quote:
    """`/v1/public/{pair}/marketsummary`: `lastTradedPrice` at `created` (kind "last")."""
    answered = body.get("currencyPair") if isinstance(body, dict) else None
    if answered is not None and str(answered).upper() != pair.upper():
        raise BadRow(f"answer is for {answered!r}")
    price = positive(require(body, "lastTradedPrice"), "lastTradedPrice")
    return Quote("valr", pair, price, iso_time(require(body, "created"), "created"), "last")


class _TickerSource(HttpSource):
    venue = ""

    def _path(self, asset: str) -> tuple[str, dict[str, str] | None]:
        raise NotImplementedError

    def _parse(self, asset: str, body: Any, ts: float) -> Quote:
        raise NotImplementedError

    async def quotes(self, assets: Sequence[str]) -> Observed[Quote]:
        """One quote per asset the venue knows and answers usably for."""
        tally: Tally[Quote] = Tally()
        for asset in assets:
            path, params = self._path(asset)
            status, body = await self._request("GET", path, params=params)
            received = self.now()
            if status != 200:
                tally.reject(f"{asset}: HTTP {status} {_message(body)}")
                continue
            try:
                tally.keep(self._parse(asset, body, received))
            except BadRow as exc:
                tally.reject(f"{asset}: {exc}")
        return tally.done()


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("msg") or body.get("message") or "")[:80]
    return ""


class BinanceTicker(_TickerSource):
    """Binance spot. "BTC" is read from BTCUSDT: USDT is treated as USD (a depeg shows up as a
    disagreement with the other references, which is what surveillance is for)."""

    venue = "binance"

    def _path(self, asset: str) -> tuple[str, dict[str, str] | None]:
        return "/api/v3/ticker/bookTicker", {"symbol": f"{asset.upper()}USDT"}

    def _parse(self, asset: str, body: Any, ts: float) -> Quote:
        return parse_binance_book(asset, body, ts)


class CoinbaseTicker(_TickerSource):
    """Coinbase Exchange. "BTC" is read from the BTC-USD product."""

    venue = "coinbase"

    def _path(self, asset: str) -> tuple[str, dict[str, str] | None]:
        return f"/products/{asset.upper()}-USD/ticker", None

    def _parse(self, asset: str, body: Any, ts: float) -> Quote:
        return parse_coinbase_ticker(asset, body)


class ValrTicker(_TickerSource):
    """VALR's public market summary. Assets are VALR pairs ("BTCZAR", "USDTZAR"), kept as named."""

    venue = "valr"

    def _path(self, asset: str) -> tuple[str, dict[str, str] | None]:
        return f"/v1/public/{asset.upper()}/marketsummary", None

    def _parse(self, asset: str, body: Any, ts: float) -> Quote:
        return parse_valr_summary(asset, body)
