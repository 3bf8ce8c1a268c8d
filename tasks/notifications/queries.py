"""Reading notifications: status comes from the delivery log and the delivering job's state."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from errors import NotFoundError
from store.models import Job
from store.states import JobState
from tasks.notifications.models import Notification, NotificationAttempt
from tasks.notifications.schemas import (
    DeliveryAttemptView,
    NotificationView,
    links_for,
)

_STATUS = case(
    (Notification.delivered_at.is_not(None), "delivered"),
    (Job.state == JobState.DEAD, "failed"),
    (Job.state == JobState.CANCELLED, "cancelled"),
    (Job.state == JobState.RUNNING, "sending"),
    (Job.state == JobState.RETRYING, "retrying"),
    (Job.state.is_(None), "expired"),
    else_="pending",
)


class NotificationNotFoundError(NotFoundError):
    """No notification of that id, or not one the caller may see."""

    code = "notification_not_found"


def _base() -> Any:
    status = _STATUS.label("status")
    return select(Notification, status).outerjoin(Job, Job.id == Notification.job_id)


def view_of(
    row: Notification, status: str, attempts: list[NotificationAttempt] | None = None
) -> NotificationView:
    """The API view of one notification."""
    return NotificationView(
        id=row.id,
        job_id=row.job_id,
        kind=row.kind,
        channel=row.channel,
        to=row.recipient,
        status=status,
        template=row.template_name,
        template_version=row.template_version,
        subject=row.subject,
        dedup_key=row.dedup_key,
        send_at=row.send_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        links=links_for(row.id, row.job_id),
        attempts=None
        if attempts is None
        else [
            DeliveryAttemptView(
                number=a.number,
                at=a.at,
                outcome=a.outcome,
                status_code=a.status_code,
                reply=a.reply,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ],
    )


def find_notification(
    session: Session, notification_id: uuid.UUID, *, producer: str | None
) -> NotificationView:
    """One notification with every delivery attempt, if visible to `producer` (else
    NotificationNotFoundError)."""
    stmt = _base().where(Notification.id == notification_id)
    if producer is not None:
        stmt = stmt.where(Notification.producer == producer)
    found = session.execute(stmt).one_or_none()
    if found is None:
        raise NotificationNotFoundError(f"no notification {notification_id}")
    attempts = session.scalars(
        select(NotificationAttempt)
        .where(NotificationAttempt.notification_id == notification_id)
        .order_by(NotificationAttempt.id)
    )
    return view_of(found[0], found[1], list(attempts))


def list_notifications(
    session: Session,
    *,
    producer: str | None,
    status: str | None = None,
    channel: str | None = None,
    to: str | None = None,
    before: uuid.UUID | None = None,
    limit: int = 50,
) -> list[NotificationView]:
    """Notifications newest first, strictly older than `before` (a keyset cursor)."""
    stmt = _base().order_by(Notification.id.desc()).limit(limit)
    if producer is not None:
        stmt = stmt.where(Notification.producer == producer)
    if status is not None:
        stmt = stmt.where(_STATUS.__eq__(status))
    if channel is not None:
        stmt = stmt.where(Notification.channel == channel)
    if to is not None:
        stmt = stmt.where(Notification.recipient == to)
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    return [view_of(row, st) for row, st in session.execute(stmt)]
