"""The command lines as an operator meets them: a bad setting is one `error:` line, and no log
line carries a secret."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helios_dagster.cli import main as helios_main
from helios_live.api.logs import REQUEST_LOGGERS, Scrubber, scrub
from helios_live.cli import configure_logging
from helios_live.cli import main as live_main

TOKEN = "Pw4rT8mK2vZ6xN9qL3bH-cli"  # noqa: S105 -- a test secret
BAD = [
    ("HELIOS_TRADING_CAPITAL", "inf"),
    ("HELIOS_TRADING_CAPITAL", "1e308"),
    ("HELIOS_RISK_MAX_HOLD_S", "inf"),
    ("HELIOS_RISK_MAX_DRAWDOWN", "2"),
    ("HELIOS_RISK_MAX_LEVERAGE", "nan"),
    ("HELIOS_LIVE_PAIRS", "NOPE"),
    ("HELIOS_LIVE_PAIRS", ""),
    ("HELIOS_RISK_SECTORS", '{"DOGEZAR": "memes"}'),
    ("HELIOS_RISK_SECTORS", "not json"),
    ("HELIOS_RISK_SECTORS", '["BTCZAR"]'),
    ("HELIOS_RISK", "{"),
    ("HELIOS_API_TOKEN", "aaaaaaaaaaaaaaaa"),
    ("HELIOS_API_TOKEN", "changeme-Zq8kW3mLp7"),
]
COMMANDS: dict[str, tuple[Callable[[], None], list[str], int]] = {
    "helios-live serve": (live_main, ["helios-live", "serve"], 2),
    "helios data status": (helios_main, ["helios", "data", "status"], 1),
}


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging rewires the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {name: logging.getLogger(name).filters[:] for name in REQUEST_LOGGERS}
    yield
    root.handlers[:], root.level = handlers, level
    for name, kept in filters.items():
        logging.getLogger(name).filters[:] = kept


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("var", "value"), BAD)
def test_a_bad_setting_is_one_error_line_naming_its_variable(
    command: str,
    var: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    entry, argv, code = COMMANDS[command]
    monkeypatch.setenv("HELIOS_HOME", str(tmp_path))
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("started with a bad setting"))

    with pytest.raises(SystemExit) as exited:  # anything else would be a traceback
        entry()

    out, err = capsys.readouterr()
    assert exited.value.code == code and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: invalid configuration:") and var in line
    assert var != "HELIOS_API_TOKEN" or value not in line


@pytest.mark.parametrize(
    ("line", "clean"),
    [
        (
            '127.0.0.1:5000 - "WebSocket /api/events?token=abc123" [accepted]',
            '127.0.0.1:5000 - "WebSocket /api/events?token=***" [accepted]',
        ),
        (
            '127.0.0.1:5000 - "GET /api/portfolio?limit=5&api_key=K1&Signature=S2&x=1 HTTP/1.1" 200',
            '127.0.0.1:5000 - "GET /api/portfolio?limit=5&api_key=***&Signature=***&x=1 HTTP/1.1" 200',
        ),
        ('"GET /x?%74oken=abc HTTP/1.1" 401', '"GET /x?%74oken=*** HTTP/1.1" 401'),  # what a server decodes
        ('"GET /x?access_token=&secret=s HTTP/1.1" 401', '"GET /x?access_token=***&secret=*** HTTP/1.1" 401'),
        ('"GET /api/predictions?pair=BTCZAR&limit=10 HTTP/1.1" 200', None),
    ],
)
def test_credentials_in_query_strings_are_masked(line: str, clean: str | None) -> None:
    assert scrub(line) == (clean or line)


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    assert scrub(f"connect failed for {TOKEN}: refused", [TOKEN]) == "connect failed for ***: refused"


def test_configure_logging_masks_request_lines_of_uvicorn_and_any_other_logger(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(secrets=[TOKEN, ""])
    configure_logging(secrets=[TOKEN])  # again, as a second command in one process would: one filter each

    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/api/mode?token={TOKEN}", "1.1", 401)
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" 403', "127.0.0.1:2", "/api/events?secret=x")
    logging.getLogger("helios_live.anything").warning("retrying with %s", TOKEN)

    lines = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        '127.0.0.1:1 - "GET /api/mode?token=*** HTTP/1.1" 401',
        '127.0.0.1:2 - "WebSocket /api/events?secret=***" 403',
        "retrying with ***",
    ]
    assert sum(isinstance(f, Scrubber) for f in access.filters) == 1


def test_a_traceback_that_quotes_a_secret_is_masked_too(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(secrets=[TOKEN])
    try:
        raise RuntimeError(f"GET /x?token={TOKEN} failed")
    except RuntimeError:
        logging.getLogger("helios_live.anything").exception("request failed")

    entry = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert "RuntimeError" in entry["error"] and TOKEN not in entry["error"]
