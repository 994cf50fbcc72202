"""`helios live ...` (also installed as `helios-live`, which never imports the batch side)."""

from __future__ import annotations

import asyncio
import faulthandler
import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from helios_core.errors import HeliosError
from helios_live.api.logs import REQUEST_LOGGERS, Scrubber
from helios_live.api.principals import Role
from helios_live.settings import HeliosSettings, load_settings, problems

live_app = typer.Typer(
    help="The live service: serve the engine and its REST API, or run the exchange simulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="The UI's users (HELIOS_UI_USERS_FILE).", no_args_is_help=True)
live_app.add_typer(users_app, name="users")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry)


QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """JSON lines on stderr, with credentials in URLs and the given `secrets` masked: on the
    handler for every logger, and on the request-line loggers for any handler they are given."""
    scrubber = Scrubber(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(scrubber)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, Scrubber)] + [scrubber]
    # httpx logs every request's full URL at INFO; an alert channel's URL is its credential
    # (Slack's and Discord's webhooks, Telegram's bot token), so only its warnings are kept.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _settings() -> HeliosSettings:
    try:
        return load_settings()
    except HeliosError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@live_app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HELIOS_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default HELIOS_API_PORT).")] = None,
) -> None:
    """Run the live engine and its REST API (settings from HELIOS_* variables)."""
    import uvicorn

    from helios_live.api.app import create_app

    overrides = {k: v for k, v in {"api_host": host, "api_port": port}.items() if v is not None}
    try:
        settings = _settings().replace(**overrides)
    except ValidationError as exc:
        typer.echo(f"error: invalid configuration: {problems(exc)}", err=True)
        raise typer.Exit(2) from exc
    faulthandler.enable()  # a fatal signal leaves its traceback on stderr, next to the logs
    secrets = (
        settings.api.token,
        settings.api.viewer_token,
        settings.ui.session_secret,
        settings.valr.api_key,
        settings.valr.api_secret,
        settings.alerts.webhook_url,
        settings.alerts.webhook_secret,
        settings.alerts.slack_url,
        settings.alerts.discord_url,
        settings.alerts.telegram_token,
        settings.alerts.smtp_password,
    )
    configure_logging(secrets=[secret.get_secret_value() for secret in secrets])
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        timeout_graceful_shutdown=10,  # event-stream clients must not keep a stopping service alive
        # The client's address is the socket's unless a proxy is named: uvicorn would otherwise
        # believe X-Forwarded-For from any local peer, and a local proxy would make everyone local.
        proxy_headers=bool(settings.api.trusted_proxies),
        forwarded_allow_ips=",".join(settings.api.trusted_proxies) or None,
    )


@live_app.command()
def simulate(
    data: Annotated[Path, typer.Option(help="Folder of recorded candles / trades.")] = Path("data/sample"),
    pairs: Annotated[str, typer.Option(help="Comma-separated pairs to replay (default: all in the folder).")] = "",
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    port: Annotated[int, typer.Option(help="WebSocket port (path /ws/trade).")] = 8765,
    rest_port: Annotated[int, typer.Option(help="REST port (VALR public API + /sim control).")] = 8766,
) -> None:
    """Replay recorded market data as a VALR exchange on 127.0.0.1 (WebSocket + REST)."""
    from helios_live.venues.valr.simulator.exchange import ExchangeSimulator, load_recorded, run_simulator

    recorded = load_recorded(data, [p.strip() for p in pairs.split(",") if p.strip()] or None)

    def ready(sim: ExchangeSimulator) -> None:
        typer.echo(f"simulator: {sim.ws_url} and {sim.rest_url} (POST /sim/drop, /sim/garbage?count=N)")

    configure_logging()
    asyncio.run(run_simulator(recorded, speed=speed, host="127.0.0.1", port=port, rest_port=rest_port, on_ready=ready))


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's name: letters, digits and . _ @ -")],
    role: Annotated[Role, typer.Option(help="viewer reads; operator reads and acts.")] = "viewer",
    file: Annotated[
        Path, typer.Option(envvar="HELIOS_UI_USERS_FILE", help="The users file (created mode 0600).")
    ] = Path(".helios/ui-users"),
) -> None:
    """Add a user, or set an existing user's role and password. The password is read from a
    prompt, or from the first line of stdin when it is not a terminal; never from arguments,
    which other users of the machine can see."""
    from helios_live.api.users import add_user as write_user

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        existed = write_user(file, name, role, password)
    except HeliosError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{'updated' if existed else 'added'} {name} ({role}) in {file}")


def main() -> None:
    live_app()


if __name__ == "__main__":
    main()
