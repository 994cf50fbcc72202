"""One alert to one channel: a first try and `retries` more, with exponential backoff, each try
cut at `timeout_s`; the outcome as the ledger records it. Never raises: a channel that fails
is an outcome, not an error of the caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from helios_core.timeframes import as_datetime
from helios_live.alerts.alert import Alert
from helios_live.alerts.channels import Channel, DeliveryError
from helios_live.ledger.alerts import AlertDelivery

log = logging.getLogger("helios.alerts")
MAX_WAIT_S = 60.0  # a 429 asking for longer is waited out this long at most: alerts are urgent
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Policy:
    """The issue's numbers: 3 retries (4 tries), 1 s, 2 s, 4 s between them, 5 s per try."""

    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 5.0

    def wait(self, attempt: int, asked_s: float | None) -> float:
        """The pause after failed try `attempt` (1-based): what the service asked for, else the backoff."""
        if asked_s is not None:
            return min(MAX_WAIT_S, asked_s)
        return self.backoff_s * 2.0 ** (attempt - 1)


async def deliver(
    channel: Channel, alert: Alert, policy: Policy, now: Callable[[], float], sleep: Sleep = asyncio.sleep
) -> AlertDelivery:
    """Send `alert` on `channel` until it is taken, a failure says a retry cannot help, or the
    tries run out; `now` stamps the end (the ops clock), `sleep` waits between tries."""
    error = ""
    attempt = 0
    for attempt in range(1, policy.retries + 2):
        asked: float | None = None
        try:
            async with asyncio.timeout(policy.timeout_s):
                await channel.send(alert)
        except TimeoutError:
            error, retry = f"{channel.name}: no answer within {policy.timeout_s:g} s", True
        except DeliveryError as exc:
            error, retry, asked = str(exc), exc.retry, exc.after_s
        except Exception as exc:  # a bug in one channel must not keep the alert from the others
            log.exception("alert %s: channel %s failed", alert.alert_id, channel.name)
            error, retry = f"{channel.name}: {type(exc).__name__}", False
        else:
            return _outcome(channel, alert, attempt, "DELIVERED", None, now)
        log.warning("alert %s: %s (try %d of %d)", alert.alert_id, error, attempt, policy.retries + 1)
        if not retry or attempt > policy.retries:
            break
        await sleep(policy.wait(attempt, asked))
    return _outcome(channel, alert, attempt, "FAILED", error, now)


def _outcome(
    channel: Channel, alert: Alert, attempts: int, outcome: str, error: str | None, now: Callable[[], float]
) -> AlertDelivery:
    return AlertDelivery(
        alert_id=alert.alert_id,
        rule=alert.rule,
        subject=alert.subject,
        severity=str(alert.severity),
        state=alert.state,
        channel=channel.name,
        attempts=attempts,
        outcome=outcome,
        error=error,
        message=alert.message,
        raised_at=alert.raised_at,
        finished_at=as_datetime(now()),
    )
