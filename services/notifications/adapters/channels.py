"""Channels behind one interface: GOV.UK Notify, SMTP and a development log.

A channel either returns (with the provider's id, if any) or raises `TransientSendError`
(network, 5xx, 429: try again later) or `PermanentSendError` (rejected: record and stop).
Neither the address nor the body is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
from email.message import EmailMessage
from typing import Any

import requests
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from services.notifications.ports import (
    Channel,
    ChannelName,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from services.notifications.settings import NotificationSettings

__all__ = [
    "Channel",
    "ChannelName",
    "LogChannel",
    "NotifyChannel",
    "OutgoingMessage",
    "PermanentSendError",
    "SmtpChannel",
    "TransientSendError",
    "make_channel",
]

log = logging.getLogger(__name__)


class TokenBucket:
    """At most `per_minute` sends a minute per process (Notify allows 3,000 per API key)."""

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._tokens = float(per_minute)
        self._rate = per_minute / 60.0
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(
                    self._capacity, self._tokens + (now - self._updated) * self._rate
                )
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)


class LogChannel:
    """Development: logs the reminder id and kind only."""

    name: ChannelName = "log"

    async def send(self, message: OutgoingMessage) -> str | None:
        log.info(
            "reminder %s (%s) sent to the log channel", message.reminder_id, message.kind.value
        )
        return None


class NotifyChannel:
    """GOV.UK Notify through its official (synchronous) client, run in a thread."""

    name: ChannelName = "notify"

    def __init__(self, api_key: str, base_url: str, per_minute: int, timeout: float) -> None:
        if not api_key:
            raise ValueError("IBEST_NOTIFY_API_KEY is required for the notify channel")
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._bucket = TokenBucket(per_minute)

    def _send_blocking(self, message: OutgoingMessage) -> list[str]:
        # The client is not thread-safe: one per call.
        client = NotificationsAPIClient(  # type: ignore[no-untyped-call]
            self._api_key, base_url=self._base_url, timeout=self._timeout
        )
        ids = []
        for address in message.to:
            try:
                response: dict[str, Any] = client.send_email_notification(  # type: ignore[no-untyped-call]
                    email_address=address,
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reminder_id,
                )
            except APIError as exc:
                status = exc.status_code
                if status == 429 or status >= 500:
                    raise TransientSendError(f"Notify answered {status}") from None
                raise PermanentSendError(
                    f"Notify refused the message ({status}): {_notify_reason(exc)}"
                ) from None
            except requests.RequestException as exc:
                raise TransientSendError(f"Notify unreachable: {type(exc).__name__}") from None
            ids.append(str(response.get("id", "")))
        return ids

    async def send(self, message: OutgoingMessage) -> str | None:
        for _ in message.to:
            await self._bucket.acquire()
        ids = await asyncio.to_thread(self._send_blocking, message)
        return ",".join(ids) or None


def _notify_reason(exc: APIError) -> str:
    """Notify's error text without the address it may echo back."""
    detail = exc.message
    if isinstance(detail, list):
        return "; ".join(str(e.get("error", "")) for e in detail if isinstance(e, dict))[:200]
    return "rejected"


class SmtpChannel:
    """Plain SMTP (Mailpit locally, a relay when self-hosted), in a thread."""

    name: ChannelName = "smtp"

    def __init__(self, settings: NotificationSettings) -> None:
        self._s = settings

    def _send_blocking(self, message: OutgoingMessage) -> None:
        msg = EmailMessage()
        msg["From"] = self._s.smtp_from
        msg["To"] = ", ".join(message.to)
        msg["Subject"] = message.subject
        msg["X-IBeST-Reference"] = message.reminder_id
        msg.set_content(message.body)
        try:
            with smtplib.SMTP(
                self._s.smtp_host, self._s.smtp_port, timeout=self._s.smtp_timeout
            ) as smtp:
                if self._s.smtp_starttls:
                    smtp.starttls()
                if self._s.smtp_username:
                    smtp.login(self._s.smtp_username, self._s.smtp_password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            if all(400 <= code < 500 for code in codes):
                raise TransientSendError(f"SMTP deferred the recipient ({codes})") from None
            raise PermanentSendError(
                f"SMTP server refused the recipient address ({codes})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientSendError(f"SMTP answered {exc.smtp_code}") from None
            raise PermanentSendError(f"SMTP answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"SMTP unavailable: {type(exc).__name__}") from None

    async def send(self, message: OutgoingMessage) -> str | None:
        await asyncio.to_thread(self._send_blocking, message)
        return None


def make_channel(settings: NotificationSettings) -> Channel:
    if settings.channel == "notify":
        return NotifyChannel(
            settings.notify_api_key,
            settings.notify_base_url,
            settings.notify_rate_per_minute,
            settings.notify_timeout,
        )
    if settings.channel == "smtp":
        return SmtpChannel(settings)
    return LogChannel()
