"""A VALR public-REST server on loopback that serves recorded candles and trades.

Speaks `GET /v1/public/{pair}/buckets` and `GET /v1/public/{pair}/trades` in VALR's JSON
format, and can be told to misbehave (429 with Retry-After, 5xx, malformed pages, stalls)
so clients are tested against real HTTP rather than mocks. Given a `now` clock it serves
only what is known by then (the exchange simulator replays through it); given `controls`
it also answers `POST <path>` for a person or test driving that simulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd

from helios_live.data.recorded import Recorded

MAX_BUCKETS = 300
MAX_TRADES = 100
BUCKET = pd.Timedelta(seconds=60)

Control = Callable[[dict[str, str]], dict[str, Any]]
"""A `POST` route: takes the query parameters, returns the 202 body; ValueError means 400."""


@dataclass
class Faults:
    """Misbehaviour to inject; each list is consumed one entry per request, front first."""

    statuses: list[int] = field(default_factory=list)
    retry_after_s: float = 0.0
    malformed_pages: int = 0
    stall_s: float = 0.0


class ValrRestServer:
    """Threaded HTTP server; `url` is its base address on 127.0.0.1.

    `now` (optional) hides the future: only 1m candles closed by then and trades up to then
    are served. `controls` maps `POST` paths to handlers answered with 202.
    """

    def __init__(
        self,
        data: Recorded,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        now: Callable[[], datetime] | None = None,
        controls: Mapping[str, Control] | None = None,
    ) -> None:
        self.data = data
        self.now = now
        self.controls = dict(controls or {})
        self.faults = Faults()
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer((host, port), _handler_for(self))
        # A short poll interval keeps stop() quick; shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="valr-rest-sim", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ValrRestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def next_fault(self) -> tuple[int | None, bool, float]:
        with self._lock:
            status = self.faults.statuses.pop(0) if self.faults.statuses else None
            malformed = False
            if status is None and self.faults.malformed_pages > 0:
                self.faults.malformed_pages -= 1
                malformed = True
            return status, malformed, self.faults.stall_s

    def buckets(self, pair: str, period: int, start: int, end: int) -> list[dict[str, Any]]:
        if pair not in self.data.candles:
            return []
        candles = self.data.candles[pair]
        if self.now is not None:
            candles = candles.loc[candles["ts"] + BUCKET <= pd.Timestamp(self.now())]
        lo, hi = pd.Timestamp(start, unit="s", tz="UTC"), pd.Timestamp(end, unit="s", tz="UTC")
        window = candles.loc[(candles["ts"] >= lo) & (candles["ts"] < hi)]
        if period != 60:
            keys = window["ts"].dt.floor(f"{period}s")
            window = (
                window.groupby(keys)
                .agg(
                    ts=("ts", "first"),
                    open=("open", "first"),
                    high=("high", "max"),
                    low=("low", "min"),
                    close=("close", "last"),
                    volume=("volume", "sum"),
                )
                .assign(ts=lambda f: f.index)
            )
        rows = [
            {
                "currencyPairSymbol": pair,
                "bucketPeriodInSeconds": period,
                "startTime": row.ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "open": repr(row.open),
                "high": repr(row.high),
                "low": repr(row.low),
                "close": repr(row.close),
                "volume": repr(row.volume),
                "quoteVolume": repr(row.volume * row.close),
            }
            for row in window.itertuples()
        ]
        return rows[::-1][:MAX_BUCKETS]  # VALR answers newest first

    def trades(self, pair: str, start: int, end: int, limit: int, before_id: str | None) -> list[dict[str, Any]]:
        if pair not in self.data.trades:
            return []
        trades = self.data.trades[pair]
        if self.now is not None:
            trades = trades.loc[trades["ts"] <= pd.Timestamp(self.now())]
        lo, hi = pd.Timestamp(start, unit="s", tz="UTC"), pd.Timestamp(end, unit="s", tz="UTC")
        window = trades.loc[(trades["ts"] >= lo) & (trades["ts"] < hi)].iloc[::-1]
        if before_id is not None:
            position = window.index[window["trade_id"].astype(str) == before_id]
            window = window.loc[window.index < position[0]] if len(position) else window.iloc[0:0]
        return [
            {
                "price": repr(row.price),
                "quantity": repr(row.quantity),
                "currencyPair": pair,
                "tradedAt": row.ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "takerSide": str(row.side).lower(),
                "sequenceId": int(row.Index),
                "id": str(row.trade_id),
                "quoteVolume": repr(row.price * row.quantity),
            }
            for row in window.head(min(limit, MAX_TRADES)).itertuples()
        ]


def _handler_for(server: ValrRestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib signature
            return

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 -- stdlib hook name
            server.requests.append(self.path)
            status, malformed, stall = server.next_fault()
            if stall:
                time.sleep(stall)
            if status == 429:
                self._send(
                    429, {"code": -1, "message": "Rate limited"}, {"Retry-After": str(server.faults.retry_after_s)}
                )
                return
            if status is not None:
                self._send(status, {"code": -1, "message": f"injected {status}"})
                return
            if malformed:
                self._send(200, b'[{"startTime": "2022-01-01T00:00:00Z", "open": "1"')
                return
            self._route()

        def do_POST(self) -> None:  # noqa: N802 -- stdlib hook name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # unread, it would garble keep-alive
            url = urlparse(self.path)
            control = server.controls.get(url.path)
            if control is None:
                self._send(404, {"code": -1, "message": "Not found"})
                return
            try:
                body = control({k: v[-1] for k, v in parse_qs(url.query).items()})
            except ValueError as exc:
                self._send(400, {"code": -1, "message": str(exc)})
                return
            self._send(202, body)

        def _route(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if len(parts) != 4 or parts[:2] != ["v1", "public"] or parts[3] not in ("buckets", "trades"):
                self._send(404, {"code": -1, "message": "Not found"})
                return
            pair, kind = parts[2], parts[3]
            if pair not in server.data.candles and pair not in server.data.trades:
                self._send(400, {"code": -21, "message": f"Currency pair {pair} is not supported"})
                return
            try:
                start, end = int(query["startTime"]), int(query["endTime"])
            except (KeyError, ValueError):
                self._send(400, {"code": -1, "message": "startTime and endTime (epoch seconds) are required"})
                return
            if kind == "buckets":
                period = int(query.get("periodSeconds", "60"))
                if period not in (60, 300, 900) or (end - start) > period * MAX_BUCKETS:
                    self._send(400, {"code": -1, "message": "at most 300 buckets of 60/300/900 s per request"})
                    return
                self._send(200, server.buckets(pair, period, start, end))
            else:
                limit = int(query.get("limit", str(MAX_TRADES)))
                self._send(200, server.trades(pair, start, end, limit, query.get("beforeId")))

    return Handler


@contextmanager
def serving(data: Recorded) -> Iterator[ValrRestServer]:
    """Run a server for the duration of a `with` block."""
    server = ValrRestServer(data).start()
    try:
        yield server
    finally:
        server.stop()
