"""Notification tables: templates, webhook endpoints, notifications and their delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.ids import uuid7
from store.models import Base


def _created() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class NotificationTemplate(Base):
    """One version of a named template; a save makes a new version, old ones stay."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("producer", "name", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    producer: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEndpoint(Base):
    """A producer's webhook receiver and its signing secrets (sealed; several while rotating)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("producer", "url"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    producer: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    # [{"sealed": "...", "expires_at": iso | null}], newest first
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()


class Notification(Base):
    """One message to one recipient, and the job that delivers it."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_producer_id", "producer", "id"),
        Index("ix_notifications_channel_recipient_send_at", "channel", "recipient", "send_at"),
        Index(
            "ix_notifications_dedup",
            "producer",
            "channel",
            "recipient",
            "dedup_key",
            "created_at",
            postgresql_where=text("dedup_key IS NOT NULL"),
        ),
        Index(
            "uq_notifications_source_job_attempt_state",
            "source_job_id",
            "source_attempt",
            "source_state",
            unique=True,
            postgresql_where=text("source_job_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    producer: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="message")  # message | callback
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(String(100))
    template_version: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_endpoints.id", ondelete="SET NULL")
    )
    callback_secret: Mapped[str | None] = mapped_column(Text)  # sealed
    source_job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    source_attempt: Mapped[int | None] = mapped_column(SmallInteger)
    source_state: Mapped[str | None] = mapped_column(String(16))
    send_at: Mapped[datetime] = _created()
    created_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationAttempt(Base):
    """One try at delivering a notification: when, how it ended, what the far side said."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(SmallInteger)
    at: Mapped[datetime] = _created()
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed | refused
    status_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)  # SMTP reply or response excerpt
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
