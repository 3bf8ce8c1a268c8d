"""Fake notification gateways: far sides that answer as told, with no I/O.

Each fake turns its scripted answer into a report or an error through the same functions the
real gateway applies to what the network answered (`answer_report`, `check_reply`,
`sms_report`, …), so a delivery sees exactly what the real channel would raise.
tests/unit/test_notification_channels.py holds the fakes to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tasks.notifications.channels import DeliveryReport
from tasks.notifications.channels.email import (
    ACCEPTED_REPLIES,
    OutgoingEmail,
    check_reply,
    smtp_unavailable,
)
from tasks.notifications.channels.sms import sms_report
from tasks.notifications.channels.webhook import answer_report, transport_failure
from tasks.notifications.gateways import Gateways


@dataclass(frozen=True)
class Posted:
    """One webhook as the fake received it."""

    url: str
    body: bytes
    msg_id: str
    secrets: tuple[str, ...]


@dataclass
class FakeWebhookPoster:
    """Answers every POST with `status` (and `headers`), or fails in transport with `fails`:
    an httpcore timeout or network error, or the SSRF guard's `BlockedAddressError`."""

    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b"ok"
    fails: Exception | None = None
    posts: list[Posted] = field(default_factory=list)

    def post(self, url: str, body: bytes, *, msg_id: str, secrets: Sequence[str]) -> DeliveryReport:
        """Record the POST and answer it."""
        self.posts.append(Posted(url, body, msg_id, tuple(secrets)))
        if self.fails is not None:
            raise transport_failure(self.fails) from self.fails
        return answer_report(self.status, self.body, headers=self.headers)


@dataclass
class FakeEmailSender:
    """A relay answering each step of the conversation from `replies` (250 where unset), or
    one that cannot be reached (`unreachable`)."""

    replies: dict[str, tuple[int, str]] = field(default_factory=dict)
    unreachable: OSError | None = None
    sent: list[OutgoingEmail] = field(default_factory=list)

    def send(self, email: OutgoingEmail) -> DeliveryReport:
        """Record the email and hold the conversation."""
        self.sent.append(email)
        if self.unreachable is not None:
            raise smtp_unavailable(self.unreachable) from self.unreachable
        code, reply = 250, ""
        for step in ACCEPTED_REPLIES:  # MAIL FROM, RCPT TO, DATA: the first refusal ends it
            code, text = self.replies.get(step, (250, "2.0.0 ok"))
            reply = check_reply(step, code, text)
        return DeliveryReport(status_code=code, reply=reply)


@dataclass
class FakeSmsProvider:
    """A provider answering every message with `status`."""

    status: int = 200
    reply: str = "queued"
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def send(self, *, to: str, body: str, idempotency_key: str) -> DeliveryReport:
        """Record the message and answer it."""
        self.sent.append((to, body, idempotency_key))
        return sms_report(self.status, self.reply)


def fake_gateways(
    *,
    email: FakeEmailSender | None = None,
    webhook: FakeWebhookPoster | None = None,
    sms: FakeSmsProvider | None = None,
) -> Gateways:
    """Gateways made of fakes, each one answering success unless given."""
    return Gateways(
        email=email or FakeEmailSender(),
        webhook=webhook or FakeWebhookPoster(),
        sms=sms or FakeSmsProvider(),
    )
