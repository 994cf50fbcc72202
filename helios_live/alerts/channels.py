"""The HTTP channels, each speaking its service's own protocol over httpx: a generic JSON webhook
(optionally signed), a Slack incoming webhook, a Discord webhook and Telegram's Bot API.

A channel sends one alert once and raises `DeliveryError` saying whether a retry may help
(a timeout, a refused connection, a 5xx, a 429 with the wait it asked for) or not (any other
4xx: the same request would be refused again). Retries, their backoff and the timeout of each
try are `delivery.deliver`'s. Secrets (webhook URLs, which carry their token, and the bot
token) never appear in an error, a log line or a repr: `mask` blanks them first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from helios_core.errors import HeliosError
from helios_live.alerts.alert import Alert, AlertSeverity

SIGNATURE_HEADER = "X-Helios-Signature"
DISCORD_COLOURS = {AlertSeverity.INFO: 0x3498DB, AlertSeverity.WARNING: 0xF1C40F, AlertSeverity.CRITICAL: 0xE74C3C}
RESOLVED_COLOUR = 0x2ECC71
TEXT_MAX = 1900  # Discord's content takes 2,000 characters, Telegram's text 4,096: one cut fits both


class DeliveryError(HeliosError):
    """One try failed; `retry` says whether another could succeed, `after_s` how long the
    service asked us to wait first (a 429's retry_after)."""

    def __init__(self, message: str, *, retry: bool, after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry, self.after_s = retry, after_s


class Channel(Protocol):
    name: str
    min_severity: AlertSeverity

    async def send(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...


def masked_url(url: str) -> str:
    """Scheme and host only: the path of a webhook URL is its credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/***"


def mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # a URL before the token inside it
        if secret:
            text = text.replace(secret, "***")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    """The wait a 429 asks for, in seconds: Discord's and Telegram's JSON, or the Retry-After header."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parameters = body.get("parameters")
        for found in (body.get("retry_after"), parameters.get("retry_after") if isinstance(parameters, dict) else None):
            if isinstance(found, int | float) and found >= 0:
                return float(found)
    header = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


class HttpChannel:
    """A channel that POSTs JSON to one URL; `url` and `extra` secrets are masked in every error."""

    def __init__(
        self,
        name: str,
        url: SecretStr,
        min_severity: AlertSeverity,
        timeout_s: float,
        *,
        extra: tuple[SecretStr, ...] = (),
    ) -> None:
        self.name, self.min_severity = name, min_severity
        self._url = url
        self._secrets = (url.get_secret_value(), *(s.get_secret_value() for s in extra))
        # No redirects: a webhook that moved must be configured again, not followed blindly with its payload.
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {masked_url(self._url.get_secret_value())})"

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json", **(headers or {})}
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"{self.name}: timed out ({type(exc).__name__})", retry=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"{self.name}: {type(exc).__name__}: {mask(str(exc), self._secrets)}", retry=True
            ) from None
        if response.status_code == 429:
            raise DeliveryError(f"{self.name}: HTTP 429 rate limited", retry=True, after_s=_retry_after(response))
        if response.status_code >= 300:
            detail = mask(response.text[:200].strip(), self._secrets)
            raise DeliveryError(
                f"{self.name}: HTTP {response.status_code} {detail}".rstrip(),
                retry=response.status_code >= 500 or response.status_code == 408,
            )
        return response


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookChannel(HttpChannel):
    """The alert as JSON (`Alert.payload`); with a secret, `X-Helios-Signature: sha256=<hex>`,
    the HMAC-SHA256 of the exact body, so the receiver can tell the sender is us."""

    def __init__(self, url: SecretStr, min_severity: AlertSeverity, timeout_s: float, secret: SecretStr) -> None:
        super().__init__("webhook", url, min_severity, timeout_s, extra=(secret,))
        self._secret = secret

    async def send(self, alert: Alert) -> None:
        body = _json(alert.payload())
        headers = {}
        if key := self._secret.get_secret_value():
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        await self._post(self._url.get_secret_value(), body, headers)


class SlackChannel(HttpChannel):
    """A Slack incoming webhook: `text` (the notification's fallback) and one section block."""

    def __init__(self, url: SecretStr, min_severity: AlertSeverity, timeout_s: float) -> None:
        super().__init__("slack", url, min_severity, timeout_s)

    async def send(self, alert: Alert) -> None:
        section = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{alert.title}*\n{alert.message}"}}
        await self._post(self._url.get_secret_value(), _json({"text": alert.text, "blocks": [section]}))


class DiscordChannel(HttpChannel):
    """A Discord webhook (execute): `content` and one embed; mentions in the text ping nobody."""

    def __init__(self, url: SecretStr, min_severity: AlertSeverity, timeout_s: float) -> None:
        super().__init__("discord", url, min_severity, timeout_s)

    async def send(self, alert: Alert) -> None:
        colour = RESOLVED_COLOUR if alert.state == "RESOLVED" else DISCORD_COLOURS[alert.severity]
        embed = {
            "title": alert.title[:256],
            "description": alert.message[:TEXT_MAX],
            "color": colour,
            "timestamp": alert.raised_at.isoformat(),
            "footer": {"text": f"alert {alert.alert_id}"},
        }
        payload = {"content": alert.title[:TEXT_MAX], "embeds": [embed], "allowed_mentions": {"parse": []}}
        await self._post(self._url.get_secret_value(), _json(payload))


class TelegramChannel(HttpChannel):
    """Telegram's Bot API: `POST {base}/bot{token}/sendMessage` with the chat and plain text; a
    200 whose JSON says `ok: false` is a failure too."""

    def __init__(
        self, base_url: str, token: SecretStr, chat_id: str, min_severity: AlertSeverity, timeout_s: float
    ) -> None:
        url = SecretStr(f"{base_url.rstrip('/')}/bot{token.get_secret_value()}/sendMessage")
        super().__init__("telegram", url, min_severity, timeout_s, extra=(token,))
        self._chat_id = chat_id

    async def send(self, alert: Alert) -> None:
        payload = {"chat_id": self._chat_id, "text": alert.text[:TEXT_MAX], "disable_web_page_preview": True}
        response = await self._post(self._url.get_secret_value(), _json(payload))
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError(f"{self.name}: the answer is not JSON", retry=True) from None
        if not (isinstance(answer, dict) and answer.get("ok") is True):
            detail = answer.get("description", "") if isinstance(answer, dict) else ""
            raise DeliveryError(f"{self.name}: not ok: {mask(str(detail), self._secrets)}", retry=False)
