"""VALR request signing: hex HMAC-SHA512, keyed by the API secret, of
`timestamp + VERB + path_with_query + body + subaccount_id` (docs/valr-wire.md).

`Credentials` holds the key pair and never shows the secret: not in `repr`, not in `str`, not
in an exception. Only `sign` reads it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from helios_core.errors import ConfigurationError
from helios_live.private_file import read_private
from helios_live.settings import ValrSettings


def signature(secret: str, timestamp_ms: int, verb: str, path: str, body: str = "", subaccount: str = "") -> str:
    payload = f"{timestamp_ms}{verb.upper()}{path}{body}{subaccount}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str = field(repr=False)
    _secret: str = field(repr=False)
    subaccount: str = ""

    def __post_init__(self) -> None:
        if not self.api_key or not self._secret:
            raise ConfigurationError("VALR credentials need both an API key and an API secret")

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)}, secret=***, subaccount={self.subaccount!r})"

    __str__ = __repr__

    def headers(self, timestamp_ms: int, verb: str, path: str, body: str = "") -> dict[str, str]:
        """The authentication headers of one request."""
        sig = signature(self._secret, timestamp_ms, verb, path, body, self.subaccount)
        headers = {"X-VALR-API-KEY": self.api_key, "X-VALR-SIGNATURE": sig, "X-VALR-TIMESTAMP": str(timestamp_ms)}
        if self.subaccount:
            headers["X-VALR-SUB-ACCOUNT-ID"] = self.subaccount
        return headers

    def redact(self, text: str) -> str:
        """`text` with the key and the secret blanked out (for messages built from a server's words)."""
        for value in (self._secret, self.api_key):
            text = text.replace(value, "***")
        return text


def mask(value: str) -> str:
    return f"{value[:4]}..." if len(value) > 8 else "***"


def load_secrets_file(path: Path) -> tuple[str, str]:
    """The (key, secret) from a file of `KEY=value` lines (`HELIOS_VALR_API_KEY`,
    `HELIOS_VALR_API_SECRET`), refused unless only its owner can read it (mode 0600 or 0400)."""
    text = read_private(path, "VALR secrets file")
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigurationError(f"VALR secrets file {path}, line {number}: expected NAME=value")
        values[name.strip()] = value.strip().strip("'\"")
    key, secret = values.get("HELIOS_VALR_API_KEY", ""), values.get("HELIOS_VALR_API_SECRET", "")
    if not key or not secret:
        raise ConfigurationError(f"VALR secrets file {path} needs HELIOS_VALR_API_KEY and HELIOS_VALR_API_SECRET")
    return key, secret


def credentials(settings: ValrSettings) -> Credentials | None:
    """The key pair, from the environment or else the secrets file (ConfigurationError when that
    file is unsafe or incomplete); None when neither is configured."""
    key, secret = settings.api_key.get_secret_value(), settings.api_secret.get_secret_value()
    if not (key and secret) and settings.secrets_file is not None:
        key, secret = load_secrets_file(settings.secrets_file)
    return Credentials(key, secret, settings.subaccount_id) if key and secret else None
