"""Local servers for the alert channels, on 127.0.0.1 only: an HTTP server that answers as told
(the webhook services), aiosmtpd for email; and an in-memory channel for the rules' tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from helios_live.alerts.alert import Alert, AlertSeverity, State

LOOPBACK = "127.0.0.1"
AT = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)


def an_alert(severity: AlertSeverity = AlertSeverity.CRITICAL, state: State = "FIRING") -> Alert:
    return Alert("a1b2", "stream_down", "stream", severity, state, "market-data stream down for 301 s", AT)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer: the client's timeout must end the try

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeHttp:
    """HTTP/1.1 on an ephemeral loopback port; each request takes the next scripted reply (then 200 "ok")."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []
        self._release = asyncio.Event()

    async def __aenter__(self) -> FakeHttp:
        self.server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        self.server.close()
        await self.server.wait_closed()

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, body))
            reply = self.replies.pop(0) if self.replies else Reply()
            if reply.hang:
                await self._release.wait()
                return
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            head_out = f"HTTP/1.1 {reply.status} X\r\nContent-Length: {len(reply.body)}\r\nConnection: close\r\n"
            writer.write(f"{head_out}{extra}\r\n".encode() + reply.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class Mailbox:
    """aiosmtpd's SMTP server in the test's own event loop; login with USER / PASSWORD only."""

    USER, PASSWORD = "helios", "s3cret-pass"

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[str] = []

    async def __aenter__(self) -> Mailbox:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="localhost", auth_require_tls=False, authenticator=self._authenticate),
            LOOPBACK,
            0,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 -- aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            self.USER,
            self.PASSWORD,
        ):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class Inbox:
    """A channel that keeps what it is sent (the rules' tests need no network)."""

    def __init__(self, name: str = "inbox", min_severity: AlertSeverity = AlertSeverity.INFO) -> None:
        self.name, self.min_severity = name, min_severity
        self.alerts: list[Alert] = []
        self.closed = False

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def close(self) -> None:
        self.closed = True

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        return [(a.rule, a.subject, a.state) for a in self.alerts]


class Sleeps:
    """The backoff's waits, recorded and not slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
