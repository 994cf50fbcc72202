"""The dashboard in Debian's Chromium against a real service (uvicorn on loopback) whose kernel
paper-trades a BTC-PERP replay: a viewer sees no control; an operator watches a position open
live, closes it from the page, triggers and clears the emergency stop, switches a tier off and on.
Every page is saved as a screenshot under the test's output (`HELIOS_SCREENSHOTS` to keep them)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher

from helios_live.api.app import create_app
from helios_live.kernel.kernel import Kernel
from tests.live_support import Bucket, feed, trading_kernel

pytestmark = pytest.mark.integration

TOKEN = "Kq3vZ9pW7xR2mT8yL4nB-api"  # noqa: S105 -- test secrets
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1"}
PAGES = ("overview", "positions", "decisions", "predictions", "surveillance", "models", "backtests")


@dataclass
class Service:
    base: str
    kernel: Kernel
    live: list[Bucket]
    loop: asyncio.AbstractEventLoop
    fed: int = 0

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def feed(self, minutes: int) -> None:
        self.run(feed(self.kernel, self.live[self.fed : self.fed + minutes]))
        self.fed += minutes


def _users(path: Path) -> Path:
    hasher = PasswordHasher()
    path.write_text(f"vera viewer {hasher.hash(PASSWORDS['vera'])}\notto operator {hasher.hash(PASSWORDS['otto'])}\n")
    path.chmod(0o600)
    return path


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    kernel, live = trading_kernel(tmp_path, api_token=TOKEN, ui_users_file=_users(tmp_path / "users"))
    port = _port()
    app = create_app(kernel.settings, kernel)
    # as `helios live serve`: an event stream a page left open does not hold the stop for long
    # log_config=None: uvicorn's own would give its loggers handlers on this test's stderr, which
    # outlive the test (tests/unit/live/test_cli_hardening.py reads those loggers' output)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, timeout_graceful_shutdown=5, log_config=None)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    running = Service(f"http://127.0.0.1:{port}", kernel, live, loop)

    async def warm_up() -> None:  # start, catch up from the lake (fits the volatility model), trade
        await kernel.start(connect=False)
        await kernel.set_auto_trading(True)

    running.run(warm_up())
    running.feed(1)  # the first closed candle: the chain runs, nothing is open yet
    assert not kernel.desk.account.positions
    yield running
    server.should_exit = True
    thread.join(30)
    assert not thread.is_alive(), "the service did not stop"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HELIOS_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Visitor:
    page: Any
    errors: list[str]


@pytest.fixture
def contexts(browser: Any) -> Iterator[list[Any]]:
    """The browser contexts a test opens, closed at its end (their event streams with them)."""
    opened: list[Any] = []
    yield opened
    for context in opened:
        context.close()


def _login(browser: Any, contexts: list[Any], service: Service, name: str) -> Visitor:
    context = browser.new_context(viewport={"width": 1300, "height": 950}, base_url=service.base)
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto("/ui")
    assert "/ui/login" in page.url  # not signed in: sent to the login page
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui")  # signed in: on to the dashboard
    return Visitor(page, errors)


def _confirm(page: Any, control: str) -> None:
    page.click(f'[data-control="{control}"]')
    page.wait_for_selector("[data-confirm]")
    page.click("[data-confirm]")
    page.wait_for_selector('[data-outcome="done"]')


def test_a_viewer_sees_every_page_and_no_control(
    browser: Any, service: Service, contexts: list[Any], shots: Path
) -> None:
    visitor = _login(browser, contexts, service, "vera")
    page = visitor.page
    for name in PAGES:
        page.goto("/ui" if name == "overview" else f"/ui/pages/{name}")
        page.wait_for_selector(f"#{name}")
        assert page.locator("[data-control]").count() == 0, name
        page.screenshot(path=str(shots / f"viewer-{name}.png"))
    forged = page.request.post("/ui/actions/emergency-stop", form={"confirmed": "yes"})
    assert forged.status == 403 and "CSRF" in forged.text()  # the gate, before the role is asked
    token = page.request.get("/ui/session").json()["csrf_token"]
    refused = page.request.post("/ui/actions/emergency-stop", form={"confirmed": "yes", "csrf_token": token})
    assert refused.status == 403 and "needs the operator role" in refused.text()
    assert not service.kernel.emergency_stop
    assert visitor.errors == []


def test_an_operator_watches_a_position_open_closes_it_and_drives_the_switches(
    browser: Any, service: Service, contexts: list[Any], shots: Path
) -> None:
    visitor = _login(browser, contexts, service, "otto")
    page = visitor.page
    page.goto("/ui/pages/positions")
    page.wait_for_selector("#positions")
    assert page.locator('[data-status="OPEN"]').count() == 0
    service.feed(20)  # the model leans BUY: a position opens, and the page shows it without a reload
    page.wait_for_selector('[data-status="OPEN"]', timeout=20_000)
    page.screenshot(path=str(shots / "operator-positions-open.png"))
    position = page.locator('[data-status="OPEN"]').first.get_attribute("data-position")
    page.goto("/ui")
    page.wait_for_selector("#overview")
    assert page.locator('[data-figure="open_positions"]').inner_text() == "1"
    page.screenshot(path=str(shots / "operator-overview-open.png"))  # docs/dashboard-overview.png

    page.goto(f"/ui/chart/{service.kernel.pairs[0]}")
    # a selector, not a script: the page's CSP forbids evaluating strings
    page.wait_for_selector('#chart[data-markers]:not([data-markers="0"])', state="attached", timeout=10_000)
    page.screenshot(path=str(shots / "operator-chart.png"))

    page.goto("/ui/pages/positions")
    _confirm(page, f"close-position-{position}")
    page.goto("/ui/pages/positions")
    assert page.locator(f'[data-position="{position}"]').get_attribute("data-status") == "CLOSED"

    page.goto("/ui")
    _confirm(page, "emergency-stop")
    assert service.kernel.emergency_stop
    page.goto("/ui")
    page.wait_for_selector('[data-state="emergency"]')
    page.screenshot(path=str(shots / "operator-emergency.png"))
    _confirm(page, "emergency-clear")
    assert not service.kernel.emergency_stop

    page.goto("/ui")
    _confirm(page, "tier-off-tier4")
    page.goto("/ui")
    assert page.locator('[data-tier="tier4"] [data-health]').get_attribute("data-health") == "offline"
    assert service.kernel.tiers.off == {"tier4"}
    _confirm(page, "tier-on-tier4")
    assert service.kernel.tiers.off == set()

    for name in PAGES:
        page.goto("/ui" if name == "overview" else f"/ui/pages/{name}")
        page.wait_for_selector(f"#{name}")
        page.screenshot(path=str(shots / f"operator-{name}.png"), full_page=True)
    events = {e["kind"] for e in service.kernel.ledger.events(limit=200).items}
    assert {"POSITION_CLOSED", "EMERGENCY_STOP", "EMERGENCY_STOP_CLEARED", "TIER_SWITCHED"} <= events
    assert visitor.errors == []
