"""Log records without secrets. Servers log request lines with their query strings (uvicorn's
access log, and its WebSocket lines on `uvicorn.error`), so a client that puts a credential in a
URL would leave it in the logs; the service reads none from there, but cannot stop one arriving."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

MASK = "***"
# Loggers that write request lines; `configure_logging` filters them, whatever handlers they get.
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s\"']*)=(?P<value>[^&;#\s\"']*)")
_SENSITIVE = re.compile(r"token|secret|key|sig|pass|auth|cred|session", re.IGNORECASE)


def _masked(match: re.Match[str]) -> str:
    # The name decoded first: `?%74oken=` is the `token` a server would have read.
    if _SENSITIVE.search(unquote_plus(match["name"])):
        return f"{match['lead']}{match['name']}={MASK}"
    return match[0]


def scrub(message: str, secrets: Iterable[str] = ()) -> str:
    """`message` with the values of credential-like query parameters and every known secret masked."""
    clean = _PARAM.sub(_masked, message)
    for secret in secrets:
        clean = clean.replace(secret, MASK)
    return clean


class Scrubber(logging.Filter):
    """Rewrites a record's message with `scrub`; `secrets` are the configured ones (empty skipped)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: the handler reports that
            return True
        clean = scrub(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # a traceback can quote a URL or a secret too
            record.exc_text = scrub(_FORMATTER.formatException(record.exc_info), self.secrets)
        return True


_FORMATTER = logging.Formatter()
