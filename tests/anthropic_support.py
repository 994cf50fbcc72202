"""A fake Anthropic Messages API on loopback, for the real SDK to talk to through `base_url`.

Each test scripts what the next requests get (`server.script(tool(...), status(529), ...)`);
when the script runs out, every request gets `server.default` (a valid APPROVE tool call unless
told otherwise), so a benchmark can run it as an instant server: `FakeAnthropic()` as is. Every
request is recorded (its headers and JSON body) for assertions.

It is a minimal HTTP/1.1 server on `asyncio.start_server`, run on its own event loop in a
daemon thread so it serves a client on any loop (or none): requests with a Content-Length body,
keep-alive unless the client asks `Connection: close`. Importable without pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

TOOL_NAME = "trade_decision"
MODEL = "claude-sonnet-4-5-20250929"

VALID_ANSWER: dict[str, Any] = {
    "decision": "APPROVE",
    "size_multiplier": 1.0,
    "leverage": 1.0,
    "stop_loss_pct": 0.02,
    "take_profit_pct": 0.04,
    "confidence": 0.7,
    "reasons": ["trend and model agree"],
}
USAGE: dict[str, Any] = {
    "input_tokens": 1200,
    "output_tokens": 80,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Behaviour:
    """One response: a status, a body (bytes, sent as is), headers, after `delay_s`."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def message(content: list[dict[str, Any]], stop_reason: str, usage: Mapping[str, Any] | None = None) -> Behaviour:
    body = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(USAGE if usage is None else usage),
    }
    return Behaviour(200, json.dumps(body).encode())


def tool(
    input: Mapping[str, Any] | None = None,
    stop_reason: str = "tool_use",
    usage: Mapping[str, Any] | None = None,
    name: str = TOOL_NAME,
) -> Behaviour:
    """A tool call answering `input` (a valid APPROVE by default)."""
    block = {"type": "tool_use", "id": "toolu_fake", "name": name, "input": dict(input or VALID_ANSWER)}
    return message([block], stop_reason, usage)


def text_only(text: str = "I would approve this trade.", stop_reason: str = "end_turn") -> Behaviour:
    return message([{"type": "text", "text": text}], stop_reason)


def refusal() -> Behaviour:
    return message([], "refusal", {"input_tokens": 900, "output_tokens": 3})


def max_tokens() -> Behaviour:
    """Output cut off at `max_tokens`, inside the tool call: its input is incomplete."""
    block = {"type": "tool_use", "id": "toolu_fake", "name": TOOL_NAME, "input": {"decision": "APPROVE"}}
    return message([block], "max_tokens", {"input_tokens": 1200, "output_tokens": 512})


def raw_json_body(text: str, status: int = 200) -> Behaviour:
    """`text` sent as an application/json body, whatever it is (malformed JSON, a literal NaN)."""
    return Behaviour(status, text.encode())


def status(code: int, headers: Mapping[str, str] | None = None, message: str | None = None) -> Behaviour:
    """An Anthropic-style error response."""
    kind = ERROR_TYPES.get(code, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message or f"fake {code} {kind}"}}
    return Behaviour(code, json.dumps(body).encode(), dict(headers or {}))


def delay(seconds: float, then: Behaviour | None = None) -> Behaviour:
    base = then if then is not None else tool()
    return Behaviour(base.status, base.body, base.headers, base.delay_s + seconds)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: Any  # the JSON body, None when it had none or it was not JSON
    raw: bytes


class FakeAnthropic:
    """`with FakeAnthropic() as server:` serves on `server.base_url` until the block ends."""

    def __init__(self, default: Behaviour | None = None, host: str = "127.0.0.1") -> None:
        self.default = default if default is not None else tool()
        self.host = host
        self.port = 0
        self.requests: list[Request] = []
        self.served_s: list[float] = []  # per request: read to response written
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._served = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        """Requests answered or being answered."""
        with self._lock:
            return self._served

    def script(self, *behaviours: Behaviour) -> FakeAnthropic:
        """Queue what the next requests get, in order, after anything queued already."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    def reset(self, behaviours: Iterable[Behaviour] = ()) -> None:
        with self._lock:
            self._script = deque(behaviours)
            self.requests.clear()
            self._served = 0

    def start(self) -> FakeAnthropic:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._connection, self.host, 0))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Anthropic server did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._server = self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self) -> tuple[int, Behaviour]:
        with self._lock:
            self._served += 1
            return self._served, self._script.popleft() if self._script else self.default

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    break
                started = time.perf_counter()
                with self._lock:
                    self.requests.append(request)
                n, behaviour = self._next()
                if behaviour.delay_s > 0:
                    await asyncio.sleep(behaviour.delay_s)
                close = request.headers.get("connection", "").lower() == "close"
                writer.write(_response(n, behaviour, close))
                await writer.drain()
                with self._lock:  # the server's own time, for a benchmark to leave out of the client's
                    self.served_s.append(time.perf_counter() - started)
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (a timeout): nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): this loop is ours and ending, and a cancelled handler would be logged as an error
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # stop() cancels this handler
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # closed between requests
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return Request(method, path, headers, body, raw)


def _response(n: int, behaviour: Behaviour, close: bool) -> bytes:
    known = behaviour.status in HTTPStatus._value2member_map_
    reason = HTTPStatus(behaviour.status).phrase if known else "Overloaded" if behaviour.status == 529 else "Status"
    headers = {
        "content-type": "application/json",
        "content-length": str(len(behaviour.body)),
        "request-id": f"req_fake_{n}",
        "connection": "close" if close else "keep-alive",
        **{k.lower(): v for k, v in behaviour.headers.items()},
    }
    head = f"HTTP/1.1 {behaviour.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + behaviour.body


if __name__ == "__main__":  # python -m tests.anthropic_support: an instant server until interrupted
    with FakeAnthropic() as fake:
        print(fake.base_url, flush=True)  # noqa: T201 -- the address is the output
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
