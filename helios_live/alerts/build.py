"""The alerting service the settings describe: a channel for each one configured."""

from __future__ import annotations

from helios_live.alerts.alert import AlertSeverity
from helios_live.alerts.channels import Channel, DiscordChannel, SlackChannel, TelegramChannel, WebhookChannel
from helios_live.alerts.delivery import Policy
from helios_live.alerts.rules import Conditions
from helios_live.alerts.service import Alerts
from helios_live.alerts.smtp import EmailChannel
from helios_live.alerts.throttle import Throttle
from helios_live.settings import AlertSettings


def channels(settings: AlertSettings) -> list[Channel]:
    """Every channel whose URL, token or host is set; none: alerts are logged and recorded as
    `ALERT` engine events only."""
    s, timeout = settings, settings.timeout_s
    out: list[Channel] = []
    if s.webhook_url.get_secret_value():
        out.append(WebhookChannel(s.webhook_url, AlertSeverity[s.webhook_min_severity], timeout, s.webhook_secret))
    if s.slack_url.get_secret_value():
        out.append(SlackChannel(s.slack_url, AlertSeverity[s.slack_min_severity], timeout))
    if s.discord_url.get_secret_value():
        out.append(DiscordChannel(s.discord_url, AlertSeverity[s.discord_min_severity], timeout))
    if s.telegram_token.get_secret_value():
        severity = AlertSeverity[s.telegram_min_severity]
        out.append(TelegramChannel(s.telegram_base_url, s.telegram_token, s.telegram_chat_id, severity, timeout))
    if s.smtp_host:
        out.append(
            EmailChannel(
                s.smtp_host,
                s.smtp_port,
                s.smtp_from,
                s.smtp_to,
                AlertSeverity[s.smtp_min_severity],
                timeout,
                starttls=s.smtp_starttls,
                username=s.smtp_username,
                password=s.smtp_password,
            )
        )
    return out


def build_alerts(settings: AlertSettings) -> Alerts:
    return Alerts(
        channels(settings),
        Throttle(settings.throttle_s, settings.reminder_s),
        Conditions(settings.stream_down_s),
        Policy(settings.retries, settings.backoff_s, settings.timeout_s),
        check_s=settings.check_s,
        close_grace_s=settings.timeout_s,
    )
