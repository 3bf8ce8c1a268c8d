"""`/v1/notifications`: send email, webhooks and SMS; read their status and delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from store.api_keys import Principal
from tasks.notifications.queries import find_notification, list_notifications
from tasks.notifications.schemas import (
    Channel,
    NotificationAccepted,
    NotificationPage,
    NotificationRequest,
    NotificationView,
    Status,
    links_for,
)
from tasks.notifications.service import submit
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
    done = submit(session, body, producer=principal.producer, settings=settings)
    if done.deduplicated:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        session.commit()
    response.headers["Location"] = f"/v1/notifications/{done.id}"
    return NotificationAccepted(
        id=done.id,
        job_id=done.job_id,
        send_at=done.send_at,
        deduplicated=done.deduplicated,
        links=links_for(done.id, done.job_id),
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
