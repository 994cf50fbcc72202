"""The dashboard's controls: what each does, which need a typed phrase, and the call it makes.

Each is a POST to /ui/actions/<name>: the first answers with a confirmation page, the second
(`confirmed=yes`) acts. Both need an operator session and its CSRF token (the API's gate refuses a
cookie-authenticated POST without one). Who and when is in the API's audit; the engine's own
events say `dashboard: <user>` where they carry a reason or a `by`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from helios_core.trading.enums import TradingMode
from helios_live.api.auth import Identity
from helios_live.api.gate import IDENTITY
from helios_live.api.principals import Principal
from helios_live.kernel.kernel import Kernel
from helios_live.models.registry import Registry

Run = Callable[[Kernel, Registry, Principal, str, str], Awaitable[str]]


@dataclass(frozen=True)
class Control:
    name: str
    label: str
    effect: str  # shown on the confirmation page
    run: Run
    phrase: bool = False  # LIVE needs the confirmation phrase typed in


async def _emergency(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    await engine.set_emergency_stop(True, f"dashboard: {who.name}")
    return "Emergency stop active: every position closed at the market, new entries blocked."


async def _clear(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    await engine.set_emergency_stop(False, f"dashboard: {who.name}")
    return "Emergency stop cleared: entries may open again (auto-trading permitting)."


async def _auto_on(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    await engine.set_auto_trading(True)
    return "Auto-trading on: approved signals open positions."


async def _auto_off(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    await engine.set_auto_trading(False)
    return "Entries paused: no new position opens; open ones keep their stops, take-profits and exits."


async def _close(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    if not re.fullmatch(r"[0-9]{1,18}", target):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the position's id is a number")
    item = await asyncio.to_thread(engine.ledger.position, int(target))
    if item is None or item["key"] not in engine.desk.account.positions:
        raise HTTPException(status.HTTP_409_CONFLICT, f"position {target} is not open")
    closed = (await engine.close_position(item["key"])).position
    return f"Position {target} ({closed.pair}) closed at {closed.exit_price:g}: realised P&L {closed.realised_pnl:.2f}."


def _tier(enabled: bool) -> Run:
    async def switch(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
        await engine.set_tier(target, enabled, by=f"dashboard: {who.name}")
        return f"{target} switched {'on' if enabled else 'off'}."

    return switch


async def _mode(engine: Kernel, _: Registry, who: Principal, target: str, phrase: str) -> str:
    try:
        mode = TradingMode(target)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the mode is PAPER, SHADOW or LIVE") from None
    now = await engine.set_mode(mode, phrase or None, f"dashboard: {who.name}")
    return f"Trading mode {now}."


async def _promote(engine: Kernel, registry: Registry, who: Principal, target: str, phrase: str) -> str:
    bundle = await asyncio.to_thread(registry.promote, target, f"dashboard: {who.name}")  # hashes the model
    return f"{bundle.version} is ACTIVE; the engine loads it at its next registry poll."


async def _rollback(engine: Kernel, registry: Registry, who: Principal, target: str, phrase: str) -> str:
    return f"Rolled back: {await asyncio.to_thread(registry.rollback)} is ACTIVE again."


CONTROLS = {
    c.name: c
    for c in (
        Control(
            "emergency-stop",
            "Emergency stop",
            "Close every open position at the market and block new entries.",
            _emergency,
        ),
        Control(
            "emergency-clear", "Clear the emergency stop", "Entries may open again, auto-trading permitting.", _clear
        ),
        Control("auto-trading-on", "Auto-trading on", "Approved signals open positions.", _auto_on),
        Control(
            "auto-trading-off",
            "Pause entries",
            "No new position opens; open positions keep their stops, take-profits and exits.",
            _auto_off,
        ),
        Control("close-position", "Close position", "Close this position at the market now.", _close),
        Control("tier-off", "Switch the tier off", "The tier's part of the chain stops as its row says.", _tier(False)),
        Control("tier-on", "Switch the tier on", "The tier's part of the chain runs again.", _tier(True)),
        Control(
            "mode",
            "Switch the trading mode",
            "LIVE sends real orders to VALR; type the phrase to confirm.",
            _mode,
            phrase=True,
        ),
        Control("promote", "Promote", "Make this model ACTIVE (refused unless its checks passed).", _promote),
        Control("rollback", "Roll back", "ACTIVE goes back to the model before the latest promotion.", _rollback),
    )
}


def find(name: str) -> Control:
    control = CONTROLS.get(name)
    if control is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no control {name!r}; the controls are {', '.join(CONTROLS)}")
    return control


def require_operator(who: Principal, control: Control) -> None:
    if not who.operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{control.label} needs the operator role; {who.name!r} is a {who.role}"
        )


def csrf_token(request: Request) -> str:
    """The session's CSRF token for the page's forms ("" for a bearer-token or development caller,
    whose POSTs need none)."""
    identity: Identity | None = request.scope.get(IDENTITY)
    if identity is None or identity.session is None:
        return ""
    return str(request.app.state.auth.sessions.csrf_token(identity.session))
