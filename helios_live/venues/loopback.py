"""A fake venue's server: a Starlette app served by uvicorn on its own event loop, in a thread of
its own, on 127.0.0.1 and a free port, so sync tests, async tests and a process under test can
all talk to it. The fakes (FakeValr, FakeMarkets) subclass it and give `_app()`."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette


class LoopbackServer:
    name = "fake server"
    ws_path = ""  # the WebSocket route `ws_url` points at

    _loop: asyncio.AbstractEventLoop | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    url = ws_url = ""

    def _app(self) -> Starlette:
        raise NotImplementedError

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted connections inherit it: without it a kept-alive connection waits out the peer's
        # delayed ACK (40 ms) on every request after the first.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.url, self.ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}{self.ws_path}"
        # No log_config and no log_level: uvicorn must not reconfigure the process's loggers.
        config = uvicorn.Config(self._app(), log_config=None, log_level=None, lifespan="off", ws="websockets-sansio")
        self._server = server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            started.set()
            loop.run_until_complete(server.serve(sockets=[sock]))
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.name.replace(" ", "-"), daemon=True)
        self._thread.start()
        started.wait(5)
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
