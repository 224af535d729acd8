"""Sending one-time codes by text message, behind one small interface.

- :class:`HttpSmsGateway` posts ``{"to", "text"}`` as JSON to an operator's
  gateway (``HOVIYAT_SMS_GATEWAY_URL``, bearer ``HOVIYAT_SMS_GATEWAY_TOKEN``).
- :class:`DevOutbox` keeps the message in the ``dev_outbox`` table for
  ``hoviyat dev outbox --last --json``. It refuses to exist in production
  mode, so a misconfigured production server fails loudly instead of hiding
  codes in a table.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from idp.login.config import LoginSettings
from idp.settings import Settings
from idp.storage import sms_outbox
from idp.storage.engine import Database
from idp.storage.login import OutboxMessage


class SmsUnavailable(Exception):
    """The message could not be handed to the gateway."""


class OutboxForbidden(RuntimeError):
    """The development outbox was asked for in production mode."""


class SmsSender(Protocol):
    def send(self, mobile: str, text: str) -> None: ...


class HttpSmsGateway:
    def __init__(self, url: str, token: str, timeout: float) -> None:
        if not url:
            raise ValueError("HOVIYAT_SMS_GATEWAY_URL is empty: the http SMS sender needs it")
        self.url = url
        self.token = token
        self.timeout = timeout

    def send(self, mobile: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            answer = httpx.post(
                self.url, json={"to": mobile, "text": text}, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise SmsUnavailable(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if answer.status_code >= 300:
            raise SmsUnavailable(f"SMS gateway answered {answer.status_code}")


class DevOutbox:
    def __init__(self, db: Database, settings: Settings) -> None:
        if settings.is_production:
            raise OutboxForbidden(
                "the development SMS outbox cannot be used when HOVIYAT_MODE=production; "
                "set HOVIYAT_SMS_SENDER=http and HOVIYAT_SMS_GATEWAY_URL"
            )
        self.db = db

    def send(self, mobile: str, text: str) -> None:
        with self.db.session() as session:
            session.add(OutboxMessage(mobile=mobile, body=text))


def build_sender(settings: Settings, login_settings: LoginSettings, db: Database) -> SmsSender:
    if login_settings.sms_sender == "http":
        return HttpSmsGateway(
            login_settings.sms_gateway_url,
            login_settings.sms_gateway_token,
            login_settings.sms_gateway_timeout_seconds,
        )
    return DevOutbox(db, settings)


def latest_message(db: Database) -> OutboxMessage | None:
    with db.session() as session:
        newest = sms_outbox.recent_messages(session, 1)
        return newest[0] if newest else None
