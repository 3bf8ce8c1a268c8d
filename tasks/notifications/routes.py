"""`/v1/notifications`: send email, webhooks and SMS; read their status and delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from store.api_keys import Principal
from tasks.enqueue import enqueue
from tasks.notifications.queries import find_notification, list_notifications
from tasks.notifications.retries import max_attempts
from tasks.notifications.schemas import (
    DELIVER,
    Channel,
    NotificationAccepted,
    NotificationPage,
    NotificationRequest,
    NotificationView,
    Status,
    links_for,
)
from tasks.notifications.service import prepare, record
from tasks.notifications.settings import NotificationSettings
from tasks.web.auth import require_scope, visible_to
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.fields import Text
from tasks.web.paging import decode_cursor, encode_cursor
from tasks.web.routing import StrictRoute

router = APIRouter(prefix="/v1/notifications", tags=["notifications"], route_class=StrictRoute)
Writer = Annotated[Principal, Depends(require_scope("notifications:write"))]
Reader = Annotated[Principal, Depends(require_scope("notifications:read"))]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=NotificationAccepted)
def submit_notification(
    body: NotificationRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    response: Response,
) -> NotificationAccepted:
    """Accept a notification: 202 means it and its delivery job are committed."""
    prepared = prepare(
        session, body, producer=principal.producer, settings=settings.section(NotificationSettings)
    )
    if prepared.existing is not None:
        response.headers["Idempotent-Replayed"] = "true"
        job_id = prepared.existing.job_id
    else:
        attempts = max_attempts(settings.section(NotificationSettings).retry_schedule)
        job = enqueue(
            session,
            DELIVER.name,
            {"notification_id": str(prepared.id)},
            producer=principal.producer,
            run_at=prepared.send_at,
            max_attempts=attempts,
            settings=settings,
        ).job
        record(session, prepared, job_id=job.id)
        job_id = job.id
        session.commit()
    response.headers["Location"] = f"/v1/notifications/{prepared.id}"
    return NotificationAccepted(
        id=prepared.id,
        job_id=job_id,
        send_at=prepared.send_at,
        deduplicated=prepared.existing is not None,
        links=links_for(prepared.id, job_id),
    )


@router.get("/{notification_id}", response_model=NotificationView)
def get_notification(
    notification_id: uuid.UUID, session: SessionDep, principal: Reader
) -> NotificationView:
    """One notification: its status and every delivery attempt."""
    return find_notification(session, notification_id, producer=visible_to(principal))


@router.get("", response_model=NotificationPage)
def get_notifications(
    session: SessionDep,
    principal: Reader,
    status: Annotated[Status | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    to: Annotated[Text | None, Query(max_length=2_048)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """Notifications newest first, filtered by status, channel and recipient."""
    rows = list_notifications(
        session,
        producer=visible_to(principal),
        status=status,
        channel=channel,
        to=to,
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].id) if more else None
    return NotificationPage(items=rows, next_cursor=next_cursor)
