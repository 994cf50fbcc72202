"""Email over SMTP: STARTTLS and login when configured, the severity in the subject.

smtplib runs in a worker thread (it is blocking). Its socket timeout bounds each exchange with
the server, not the whole transaction, so a try that `delivery.deliver` gave up on may still
finish on its thread: a retry of the same alert never starts a second transaction while the
first runs (it fails and is tried again), and counts the first's success as its own. The mail
goes out once.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pydantic import SecretStr

from helios_live.alerts.alert import Alert, AlertSeverity
from helios_live.alerts.channels import DeliveryError, mask


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: tuple[str, ...],
        min_severity: AlertSeverity,
        timeout_s: float,
        *,
        starttls: bool = True,
        username: str = "",
        password: SecretStr = SecretStr(""),  # noqa: B008 -- immutable
    ) -> None:
        self.min_severity = min_severity
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.starttls, self.username, self._password = starttls, username, password
        self.timeout_s = timeout_s
        self._tries: dict[tuple[str, str], asyncio.Future[None]] = {}  # the latest try of each alert

    def __repr__(self) -> str:
        return f"EmailChannel({self.host}:{self.port}, to {len(self.recipients)} recipient(s))"

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[Helios {alert.severity}] {alert.title.partition('] ')[2]}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = format_datetime(alert.raised_at)
        message["Message-ID"] = make_msgid(idstring=alert.alert_id)
        message.set_content(alert.text)
        return message

    async def send(self, alert: Alert) -> None:
        key = (alert.alert_id, alert.state)
        earlier = self._tries.get(key)
        if earlier is not None and not earlier.done():
            raise DeliveryError("email: the previous try is still talking to the server", retry=True)
        if earlier is not None and earlier.exception() is None:
            del self._tries[key]
            return  # the previous try went through after it was given up on
        self._tries = {k: t for k, t in self._tries.items() if not t.done() or t.exception() is None}  # failed ones go
        self._tries[key] = asyncio.ensure_future(asyncio.to_thread(self._send, self.message(alert)))
        await asyncio.shield(self._tries[key])  # cut short, the transaction goes on on its thread
        del self._tries[key]

    async def close(self) -> None:
        return None

    def _send(self, message: EmailMessage) -> None:
        secrets = (self._password.get_secret_value(),)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"email: login refused ({exc.smtp_code})", retry=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"email: recipients refused: {', '.join(exc.recipients)}", retry=False) from None
        except smtplib.SMTPResponseException as exc:  # 4xx is the server's "try again later"
            detail = mask(
                exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error),
                secrets,
            )
            raise DeliveryError(f"email: SMTP {exc.smtp_code} {detail}", retry=exc.smtp_code < 500) from None
        except TimeoutError:
            raise DeliveryError(f"email: {self.host}:{self.port} timed out", retry=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            detail = mask(str(exc), secrets)
            raise DeliveryError(f"email: {self.host}:{self.port}: {type(exc).__name__}: {detail}", retry=True) from None
