"""The notifications job type and the bodies of its HTTP API."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.registry import JobSpec
from tasks.web.fields import Instant, Int32, JsonObject, Text
from tasks.web.paging import Page

QUEUE = "notifications"
Channel = Literal["email", "webhook", "sms"]
Status = Literal["pending", "sending", "retrying", "delivered", "failed", "cancelled"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class DeliverPayload(BaseModel):
    """Deliver one notification (its row holds everything else)."""

    model_config = ConfigDict(extra="forbid")

    notification_id: uuid.UUID


DELIVER = JobSpec(
    "notifications.deliver", DeliverPayload, QUEUE, "Delivers one notification.", batch_size=32
)


class QuietHours(BaseModel):
    """A daily window, in the recipient's time zone, in which nothing is sent."""

    model_config = ConfigDict(extra="forbid")

    start: time = Field(examples=["22:00"])
    end: time = Field(examples=["07:00"])
    timezone: Text = Field(examples=["Europe/Paris"])

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class NotificationRequest(BaseModel):
    """A notification to send."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    to: Text = Field(min_length=1, max_length=2_048, description="Address, E.164 number or URL.")
    template: str | None = Field(default=None, pattern=NAME_PATTERN)
    template_version: Int32 | None = None
    subject: Text | None = Field(default=None, max_length=998)
    body: Text | None = Field(default=None, max_length=100_000)
    data: JsonObject | None = None
    dedup_key: Text | None = Field(default=None, min_length=1, max_length=255)
    send_at: Instant | None = None
    quiet_hours: QuietHours | None = None


class NotificationLinks(BaseModel):
    """Where to look next."""

    self: str
    job: str


def links_for(notification_id: uuid.UUID, job_id: uuid.UUID) -> NotificationLinks:
    """The links of one notification."""
    return NotificationLinks(self=f"/v1/notifications/{notification_id}", job=f"/v1/jobs/{job_id}")


class NotificationAccepted(BaseModel):
    """The 202 answer."""

    id: uuid.UUID
    job_id: uuid.UUID
    send_at: datetime
    deduplicated: bool
    links: NotificationLinks


class DeliveryAttemptView(BaseModel):
    """One delivery attempt."""

    number: int
    at: datetime
    outcome: str
    status_code: int | None
    reply: str | None
    error: str | None
    duration_ms: int | None


class NotificationView(BaseModel):
    """A notification, its status and (in the detail view) every attempt."""

    id: uuid.UUID
    job_id: uuid.UUID
    kind: str
    channel: str
    to: str
    status: str
    template: str | None
    template_version: int | None
    subject: str | None
    dedup_key: str | None
    send_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    links: NotificationLinks
    attempts: list[DeliveryAttemptView] | None = None


class NotificationPage(Page[NotificationView]):
    """One page of notifications, newest first."""


class TemplateRequest(BaseModel):
    """A template version: Jinja2 parts, checked on save."""

    model_config = ConfigDict(extra="forbid")

    subject: Text | None = Field(default=None, max_length=2_000)
    text: Text | None = Field(default=None, max_length=100_000)
    html: Text | None = Field(default=None, max_length=200_000)
    sample_data: JsonObject | None = Field(
        default=None, description="If given, the template must render with it."
    )


class TemplateView(BaseModel):
    """One stored template version."""

    name: str
    version: int
    subject: str | None
    text: str | None
    html: str | None
    variables: list[str]
    created_at: datetime


class EndpointRequest(BaseModel):
    """A webhook receiver to register; a secret is generated unless one is given."""

    model_config = ConfigDict(extra="forbid")

    url: Text = Field(min_length=1, max_length=2_048)
    secret: Text | None = Field(default=None, description="`whsec_` + base64 of 24-64 bytes.")


class SecretRequest(BaseModel):
    """A rotation: the new secret, or none to have one generated."""

    model_config = ConfigDict(extra="forbid")

    secret: Text | None = Field(default=None, description="`whsec_` + base64 of 24-64 bytes.")


class EndpointView(BaseModel):
    """A registered webhook receiver (secrets are never shown again)."""

    id: uuid.UUID
    url: str
    active_secrets: int
    created_at: datetime


class EndpointSecret(EndpointView):
    """The answer to a registration or rotation: the new secret, shown once."""

    secret: str
