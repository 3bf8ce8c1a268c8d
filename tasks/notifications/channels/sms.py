"""SMS: a provider interface, an HTTP provider adapter and a log provider for dev."""

from __future__ import annotations

from typing import Protocol

import httpx

from logs import get_logger
from tasks.notifications.channels import (
    DeliveryReport,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from tasks.notifications.settings import NotificationSettings

log = get_logger("switchyard.notifications.sms")


def sms_report(status: int, reply: str) -> DeliveryReport:
    """A 2xx answer's report; any other raises: 408, 425, 429 and 5xx retried, the rest final."""
    if 200 <= status < 300:
        return DeliveryReport(status_code=status, reply=reply)
    retryable = status in (408, 425, 429) or status >= 500
    error = TransientDeliveryError if retryable else RejectedDeliveryError
    raise error(f"SMS provider answered {status}", status_code=status, reply=reply)


class SmsProvider(Protocol):
    """Sends one text message; the far side deduplicates on `idempotency_key`."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> DeliveryReport:
        """Send, or raise a DeliveryError."""
        ...


class LogSmsProvider:
    """Dev provider: writes the message to the log instead of sending it."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> DeliveryReport:
        """Log the message."""
        log.info("sms_logged", to=to, chars=len(body), idempotency_key=idempotency_key)
        return DeliveryReport(status_code=200, reply="logged")


class HttpSmsProvider:
    """POSTs `{to, body}` as JSON with a bearer token and an Idempotency-Key header."""

    def __init__(self, *, endpoint: str, token: str | None, timeout: float = 15.0) -> None:
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout

    def send(self, *, to: str, body: str, idempotency_key: str) -> DeliveryReport:
        """Send through the provider's HTTP API."""
        headers = {"Idempotency-Key": idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = httpx.post(
                self.endpoint,
                json={"to": to, "body": body},
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"SMS provider unreachable: {exc}") from exc
        return sms_report(resp.status_code, resp.text[:512])


def sms_provider(settings: NotificationSettings) -> SmsProvider:
    """The provider settings name."""
    if settings.sms_provider == "http":
        if not settings.sms_endpoint:
            raise ValueError("notifications.sms_endpoint is required for the http provider")
        token = settings.sms_token.get_secret_value() if settings.sms_token else None
        return HttpSmsProvider(endpoint=settings.sms_endpoint, token=token)
    return LogSmsProvider()
