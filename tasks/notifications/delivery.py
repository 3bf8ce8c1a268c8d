"""Delivering one notification: derive the idempotency key, send once, log the attempt."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    CTE,
    Insert,
    Integer,
    Select,
    Text,
    Update,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Session

from config import Settings
from errors import PermanentError, RetryableError
from store.job_statements import Completion
from store.jobs import ClaimedJob
from store.models import table_of
from tasks.notifications.channels import DeliveryError, DeliveryReport, RejectedDeliveryError
from tasks.notifications.channels.email import OutgoingEmail, message_id_for
from tasks.notifications.channels.webhook import webhook_id_for
from tasks.notifications.endpoints import active_secrets
from tasks.notifications.gateways import Gateways
from tasks.notifications.models import Notification, NotificationAttempt, WebhookEndpoint
from tasks.notifications.retries import scheduled_retry
from tasks.notifications.secrets import unseal
from tasks.notifications.settings import NotificationSettings

RecordAttempt = Callable[[dict[str, Any]], None]


class Outgoing(NamedTuple):
    """A notification as its delivery needs it (the columns of `_load_statement`, in order)."""

    id: uuid.UUID
    channel: str
    recipient: str
    subject: str | None
    body_text: str | None
    body_html: str | None
    job_id: uuid.UUID
    callback_secret: str | None
    delivered_at: datetime | None
    endpoint_secrets: list[dict[str, Any]] | None


@cache
def _load_statement() -> Select[Any]:
    """Notifications as their delivery needs them, with their endpoints' secrets (built once)."""
    n, e = table_of(Notification), table_of(WebhookEndpoint)
    return (
        select(
            n.c.id,
            n.c.channel,
            n.c.recipient,
            n.c.subject,
            n.c.body_text,
            n.c.body_html,
            n.c.job_id,
            n.c.callback_secret,
            n.c.delivered_at,
            e.c.secrets.label("endpoint_secrets"),
        )
        .select_from(n.outerjoin(e, e.c.id == n.c.endpoint_id))
        .where(n.c.id == any_(bindparam("d_ids", type_=ARRAY(UUID(as_uuid=True)))))
    )


def _attempt_row(moved: CTE) -> Insert:
    """The delivered attempt's row (with the job's `succeeded`, see `DELIVERED`)."""
    a = table_of(NotificationAttempt)
    values = select(
        bindparam("d_id", type_=UUID(as_uuid=True)),
        bindparam("d_number", type_=Integer),
        literal("delivered"),
        bindparam("d_status", type_=Integer),
        bindparam("d_reply", type_=Text),
        bindparam("d_ms", type_=Integer),
    ).select_from(moved)
    columns = ["notification_id", "number", "outcome", "status_code", "reply", "duration_ms"]
    return insert(a).from_select(columns, values)


def _stamp_delivered(moved: CTE) -> Update:
    """`delivered_at` (with the job's `succeeded`, see `DELIVERED`)."""
    n = table_of(Notification)
    # clock_timestamp(), not now(): now() is the start of the transaction, maybe before the send.
    return (
        update(n)
        .where(n.c.id == bindparam("d_id", type_=UUID(as_uuid=True)), exists(select(moved.c.id)))
        .values(delivered_at=func.clock_timestamp())
    )


# What a delivery writes, in the statement that records its job's `succeeded`: one round trip.
DELIVERED: tuple[Completion, ...] = (_attempt_row, _stamp_delivered)


def _webhook_secrets(row: Outgoing, *, settings: Settings) -> list[str]:
    if row.callback_secret is not None:
        return [unseal(row.callback_secret, settings=settings)]
    sealed = row.endpoint_secrets or []
    secrets = active_secrets(sealed, settings=settings)
    if not secrets:
        raise RejectedDeliveryError("the webhook endpoint was deleted or has no secret")
    return secrets


def _send(row: Outgoing, *, settings: Settings, gateways: Gateways) -> DeliveryReport:
    if row.channel == "email":
        email = OutgoingEmail(
            to=row.recipient,
            subject=row.subject or "",
            text=row.body_text or "",
            html=row.body_html,
            message_id=message_id_for(
                row.job_id, domain=settings.section(NotificationSettings).smtp.message_id_domain
            ),
        )
        return gateways.email.send(email)
    if row.channel == "webhook":
        return gateways.webhook.post(
            row.recipient,
            (row.body_text or "").encode(),
            msg_id=webhook_id_for(row.job_id),
            secrets=_webhook_secrets(row, settings=settings),
        )
    return gateways.sms.send(
        to=row.recipient, body=row.body_text or "", idempotency_key=f"{row.job_id}:sms"
    )


def load_outgoing(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Outgoing]:
    """The notifications with these ids, as their deliveries need them, in one query."""
    rows = session.execute(_load_statement(), {"d_ids": list(ids)}).all()
    return {row.id: Outgoing(*row) for row in rows}


def deliver(
    row: Outgoing | None,
    notification_id: uuid.UUID,
    *,
    job: ClaimedJob,
    settings: Settings,
    gateways: Gateways,
    record_failure: RecordAttempt,
    record_delivered: RecordAttempt,
) -> dict[str, Any]:
    """Send the notification (`row`, from `load_outgoing`). A failure is logged via
    `record_failure`, then retried or final; a success is handed to `record_delivered`
    (the `DELIVERED` writes' parameters), which commits it with the job."""
    if row is None:
        raise PermanentError(f"notification {notification_id} does not exist")
    if row.delivered_at is not None:
        return {"status": "delivered", "already": True}
    started = time.monotonic()
    try:
        report = _send(row, settings=settings, gateways=gateways)
    except DeliveryError as exc:
        record_failure(
            {
                "notification_id": row.id,
                "number": job.attempt,
                "outcome": exc.outcome,
                "status_code": exc.status_code,
                "reply": exc.reply,
                "error": str(exc)[:2_000],
                "duration_ms": int((time.monotonic() - started) * 1_000),
            }
        )
        schedule = settings.section(NotificationSettings).retry_schedule
        delay = scheduled_retry(exc, attempt=job.attempt, schedule=schedule)
        if delay is None:
            raise PermanentError(str(exc)) from exc
        raise RetryableError(str(exc), retry_after=delay) from exc
    record_delivered(
        {
            "d_id": row.id,
            "d_number": job.attempt,
            "d_status": report.status_code,
            "d_reply": report.reply,
            "d_ms": int((time.monotonic() - started) * 1_000),
        }
    )
    return {"status": "delivered", "status_code": report.status_code, "reply": report.reply}
