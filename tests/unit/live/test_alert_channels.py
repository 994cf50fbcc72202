"""Each alert channel against a local server on 127.0.0.1 speaking its service's protocol: the
payload each one sends, how it reads the answer, the retries, their backoff and the timeout of
each try. The backoff's waits are recorded, not slept; the timeout's server never answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from email import message_from_bytes

import pytest
from pydantic import SecretStr

from helios_live.alerts.alert import AlertSeverity
from helios_live.alerts.channels import (
    SIGNATURE_HEADER,
    Channel,
    DiscordChannel,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
)
from helios_live.alerts.delivery import Policy, deliver
from helios_live.alerts.smtp import EmailChannel
from helios_live.cli import QUIET_LOGGERS, configure_logging
from helios_live.ledger.alerts import AlertDelivery
from helios_live.settings import AlertSettings
from tests.alert_support import AT, LOOPBACK, FakeHttp, Mailbox, Reply, Request, Sleeps, an_alert

CRITICAL = AlertSeverity.CRITICAL
FAST = Policy(retries=3, backoff_s=1.0, timeout_s=2.0)
TOKEN = "123456:ABC-bot-token-xyz"  # noqa: S105 -- a fake bot token for the fake server


def _now() -> float:
    return AT.timestamp() + 1.5


async def _deliver(channel: Channel, sleeps: Sleeps | None = None, policy: Policy = FAST) -> AlertDelivery:
    try:
        return await deliver(channel, an_alert(), policy, _now, sleeps or Sleeps())
    finally:
        await channel.close()


def test_the_defaults_are_three_retries_doubling_from_one_second_and_five_seconds_a_try() -> None:
    settings, policy = AlertSettings(), Policy()
    assert (settings.retries, settings.backoff_s, settings.timeout_s) == (3, 1.0, 5.0)
    assert (policy.retries, policy.timeout_s) == (3, 5.0)
    assert [policy.wait(n, None) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_webhook_posts_the_alert_as_json_signed_with_hmac_sha256_of_the_body() -> None:
    async def run() -> tuple[AlertDelivery, list[Request]]:
        async with FakeHttp() as server:
            channel = WebhookChannel(SecretStr(server.url()), AlertSeverity.INFO, 2.0, SecretStr("shared-secret"))
            return await _deliver(channel), server.requests

    outcome, requests = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, outcome.channel, outcome.error) == ("DELIVERED", 1, "webhook", None)
    (request,) = requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["rule"] == "stream_down" and body["severity"] == "CRITICAL" and body["state"] == "FIRING"
    assert body["alert_id"] == "a1b2" and body["raised_at"] == AT.isoformat()
    expected = hmac.new(b"shared-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"


def test_slack_gets_text_and_a_section_block() -> None:
    async def run() -> tuple[AlertDelivery, list[Request]]:
        async with FakeHttp() as server:
            return await _deliver(
                SlackChannel(SecretStr(server.url("/services/T/B/X")), CRITICAL, 2.0)
            ), server.requests

    outcome, (request,) = asyncio.run(run())

    assert outcome.outcome == "DELIVERED" and request.path == "/services/T/B/X"
    body = request.json()
    assert body["text"].startswith("[CRITICAL] stream_down stream: firing")
    assert body["blocks"][0]["type"] == "section" and body["blocks"][0]["text"]["type"] == "mrkdwn"


def test_discord_gets_content_and_an_embed_and_waits_what_a_429_asks() -> None:
    sleeps = Sleeps()
    limited = Reply.json(429, {"message": "You are being rate limited.", "retry_after": 0.25, "global": False})

    async def run() -> tuple[AlertDelivery, list[Request]]:
        async with FakeHttp(limited, Reply(204, b"")) as server:
            return await _deliver(DiscordChannel(SecretStr(server.url()), CRITICAL, 2.0), sleeps), server.requests

    outcome, requests = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts) == ("DELIVERED", 2)
    assert sleeps.waits == [0.25]  # Discord's retry_after, not the backoff
    body = requests[-1].json()
    assert body["content"].startswith("[CRITICAL] stream_down")
    assert body["embeds"][0]["description"] == "market-data stream down for 301 s"
    assert body["allowed_mentions"] == {"parse": []}


def test_telegram_posts_send_message_under_the_bot_path_and_reads_ok() -> None:
    refused = Reply.json(200, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})

    async def run() -> tuple[AlertDelivery, AlertDelivery, list[Request]]:
        async with FakeHttp(Reply.json(200, {"ok": True, "result": {"message_id": 7}}), refused) as server:
            base = f"http://{LOOPBACK}:{server.port}"
            sent = await _deliver(TelegramChannel(base, SecretStr(TOKEN), "-100200", CRITICAL, 2.0))
            lost = await _deliver(TelegramChannel(base, SecretStr(TOKEN), "-100200", CRITICAL, 2.0))
            return sent, lost, server.requests

    sent, lost, requests = asyncio.run(run())

    assert requests[0].path == f"/bot{TOKEN}/sendMessage"
    assert requests[0].json()["chat_id"] == "-100200" and "stream_down" in requests[0].json()["text"]
    assert (sent.outcome, sent.attempts) == ("DELIVERED", 1)
    # ok: false is a failure, and a 400 will not change on a retry
    assert (lost.outcome, lost.attempts) == ("FAILED", 1)
    assert lost.error is not None and "chat not found" in lost.error and TOKEN not in lost.error


def test_a_successful_send_leaves_the_bot_token_out_of_the_service_logs(capsys: pytest.CaptureFixture[str]) -> None:
    root, quiet = logging.getLogger(), {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging()  # as `helios live serve` sets it up: httpx logs each request's URL at INFO

        async def run() -> AlertDelivery:
            async with FakeHttp(Reply.json(200, {"ok": True, "result": {"message_id": 7}})) as server:
                base = f"http://{LOOPBACK}:{server.port}"
                return await _deliver(TelegramChannel(base, SecretStr(TOKEN), "-100200", CRITICAL, 2.0))

        assert asyncio.run(run()).outcome == "DELIVERED"
    finally:
        root.handlers[:], root.level = handlers, level
        for name, kept in quiet.items():
            logging.getLogger(name).setLevel(kept)
    assert TOKEN not in capsys.readouterr().err


def test_email_goes_through_smtp_with_login_and_the_severity_in_the_subject() -> None:
    async def run() -> tuple[AlertDelivery, AlertDelivery, Mailbox]:
        async with Mailbox() as box:

            def channel(password: str) -> EmailChannel:
                return EmailChannel(
                    LOOPBACK, box.port, "helios@example.org", ("ops@example.org", "oncall@example.org"), CRITICAL,
                    2.0, starttls=False, username=Mailbox.USER, password=SecretStr(password),
                )  # fmt: skip

            sent = await _deliver(channel(Mailbox.PASSWORD))
            refused = await _deliver(channel("wrong-password-xyz"))
            return sent, refused, box

    sent, refused, box = asyncio.run(run())

    assert (sent.outcome, sent.attempts, sent.channel) == ("DELIVERED", 1, "email")
    (envelope,) = box.envelopes
    assert envelope.mail_from == "helios@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    mail = message_from_bytes(envelope.content)  # type: ignore[arg-type]  # bytes with decode_data off
    assert mail["Subject"] == "[Helios CRITICAL] stream_down stream: firing"
    assert "market-data stream down for 301 s" in mail.get_payload()
    assert box.logins == [Mailbox.USER]
    # a refused login is not retried, and the password is nowhere in the record
    assert (refused.outcome, refused.attempts) == ("FAILED", 1)
    assert refused.error is not None and "wrong-password-xyz" not in refused.error


def test_a_server_failing_twice_then_answering_takes_three_tries_with_backoff() -> None:
    sleeps = Sleeps()

    async def run() -> AlertDelivery:
        async with FakeHttp(Reply(500, b"boom"), Reply(503, b"busy")) as server:
            return await _deliver(SlackChannel(SecretStr(server.url()), CRITICAL, 2.0), sleeps)

    outcome = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, outcome.error) == ("DELIVERED", 3, None)
    assert sleeps.waits == [1.0, 2.0]


def test_after_four_failed_tries_the_delivery_is_failed_with_the_last_error() -> None:
    sleeps = Sleeps()

    async def run() -> tuple[AlertDelivery, int]:
        async with FakeHttp(*[Reply(502, b"bad gateway")] * 5) as server:
            outcome = await _deliver(DiscordChannel(SecretStr(server.url()), CRITICAL, 2.0), sleeps)
            return outcome, len(server.requests)

    outcome, requests = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, requests) == ("FAILED", 4, 4)
    assert outcome.error == "discord: HTTP 502 bad gateway"
    assert sleeps.waits == [1.0, 2.0, 4.0]
    assert outcome.finished_at.timestamp() == _now() and outcome.raised_at == AT


def test_a_client_error_is_not_retried() -> None:
    async def run() -> AlertDelivery:
        async with FakeHttp(Reply(404, b"no_service")) as server:
            return await _deliver(SlackChannel(SecretStr(server.url()), CRITICAL, 2.0))

    outcome = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, outcome.error) == ("FAILED", 1, "slack: HTTP 404 no_service")


def test_each_try_is_cut_at_the_timeout() -> None:
    sleeps = Sleeps()
    policy = Policy(retries=1, backoff_s=1.0, timeout_s=0.2)

    async def run() -> tuple[AlertDelivery, int]:
        async with FakeHttp(Reply(hang=True), Reply(hang=True)) as server:
            channel = WebhookChannel(SecretStr(server.url()), CRITICAL, 30.0, SecretStr(""))
            return await _deliver(channel, sleeps, policy), len(server.requests)

    outcome, requests = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, requests) == ("FAILED", 2, 2)
    assert outcome.error == "webhook: no answer within 0.2 s"


def test_a_webhook_url_never_appears_in_an_error_or_a_repr() -> None:
    hook_path = "/services/T000/B000/very-secret-token"  # the part of a Slack URL that is its credential

    async def run() -> tuple[AlertDelivery, str]:
        async with FakeHttp() as server:
            url = server.url(hook_path)
        channel = SlackChannel(SecretStr(url), CRITICAL, 2.0)  # the server is gone: refused
        return await _deliver(channel, policy=Policy(retries=0)), repr(channel)

    outcome, shown = asyncio.run(run())

    assert outcome.outcome == "FAILED" and outcome.error is not None
    assert "very-secret-token" not in outcome.error and "very-secret-token" not in shown
    assert shown.startswith("SlackChannel('slack', http://127.0.0.1:") and shown.endswith("/***)")


def test_telegram_waits_the_retry_after_its_429_names() -> None:
    sleeps = Sleeps()
    limited = Reply.json(
        429, {"ok": False, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 3}}
    )

    async def run() -> AlertDelivery:
        async with FakeHttp(limited, Reply.json(200, {"ok": True, "result": {}})) as server:
            base = f"http://{LOOPBACK}:{server.port}"
            return await _deliver(TelegramChannel(base, SecretStr(TOKEN), "42", CRITICAL, 2.0), sleeps)

    outcome = asyncio.run(run())

    assert (outcome.outcome, outcome.attempts, sleeps.waits) == ("DELIVERED", 2, [3.0])


def test_an_email_try_given_up_on_is_not_sent_again_while_it_may_still_go_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []

    def slow(self: EmailChannel, message: object) -> None:  # the server takes 0.3 s to accept the mail
        time.sleep(0.3)
        sent.append(str(message["Message-ID"]))  # type: ignore[index]

    monkeypatch.setattr(EmailChannel, "_send", slow)
    channel = EmailChannel(LOOPBACK, 25, "helios@example.org", ("ops@example.org",), CRITICAL, 0.1, starttls=False)
    policy = Policy(retries=3, backoff_s=0.1, timeout_s=0.1)
    delivery = asyncio.run(deliver(channel, an_alert(), policy, _now, asyncio.sleep))  # real waits: 0.1, 0.2 s
    # try 1 is cut at 0.1 s, try 2 (0.2 s) finds it still running, try 3 (0.4 s) finds it done
    assert (delivery.outcome, delivery.attempts, len(sent)) == ("DELIVERED", 3, 1)
