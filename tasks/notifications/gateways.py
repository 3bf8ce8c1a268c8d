"""The outside world a delivery talks to: one gateway per channel, each real one in its channel
module (`SmtpSender`, `PooledWebhookPoster`, the `SmsProvider`s), fakes in the unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tasks.notifications.channels import DeliveryReport
from tasks.notifications.channels.email import OutgoingEmail
from tasks.notifications.channels.sms import SmsProvider


class EmailSender(Protocol):
    """Hands one email to the mail system."""

    def send(self, email: OutgoingEmail) -> DeliveryReport:
        """Send, or raise a DeliveryError."""
        ...


class WebhookPoster(Protocol):
    """POSTs one signed webhook; the far side deduplicates on `msg_id` (its `webhook-id`)."""

    def post(self, url: str, body: bytes, *, msg_id: str, secrets: Sequence[str]) -> DeliveryReport:
        """Post once, following no redirect, or raise a DeliveryError."""
        ...


@dataclass(frozen=True)
class Gateways:
    """A delivery's way out, per channel."""

    email: EmailSender
    webhook: WebhookPoster
    sms: SmsProvider
