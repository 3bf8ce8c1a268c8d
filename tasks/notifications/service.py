"""Accepting notifications: validate, render, deduplicate, schedule, record."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from store.ids import uuid7
from tasks.enqueue import enqueue
from tasks.notifications.models import Notification, WebhookEndpoint
from tasks.notifications.retries import max_attempts
from tasks.notifications.scheduling import (
    after_quiet_hours,
    lock_recipient,
    rate_limited_slot,
    scheduled_sends,
)
from tasks.notifications.schemas import DELIVER, NotificationRequest
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import check_url, parse_networks
from tasks.notifications.templates import (
    Rendered,
    TemplateNotFoundError,
    find_template,
    parts_of,
    render,
)


@dataclass
class Prepared:
    """A notification ready to be recorded, or the one a dedup key points back to."""

    id: uuid.UUID
    send_at: datetime
    existing: Notification | None = None
    values: dict[str, Any] = field(default_factory=dict)


def normalise_recipient(channel: str, to: str, *, settings: NotificationSettings) -> str:
    """The canonical form of `to` for its channel, or InvalidFieldError on `to`."""
    try:
        if channel == "email":
            return validate_email(to, check_deliverability=False).normalized
        if channel == "sms":
            number = phonenumbers.parse(to, None)
            if not phonenumbers.is_valid_number(number):
                raise InvalidFieldError("not a valid phone number", field="to")
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        check_url(to, allowed=parse_networks(settings.webhook_allowed_networks), field="to")
        return to
    except EmailNotValidError as exc:
        raise InvalidFieldError(f"not a valid email address: {exc}", field="to") from exc
    except phonenumbers.NumberParseException as exc:
        raise InvalidFieldError(f"not an E.164 phone number: {exc}", field="to") from exc


def _check_subject(subject: str) -> None:
    """A header line: CR, LF or any other control character would break (or forge) headers."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in subject):
        raise InvalidFieldError("an email subject holds no control characters", field="subject")


def _content(
    session: Session, req: NotificationRequest, *, producer: str, max_chars: int
) -> dict[str, Any]:
    data = req.data or {}
    if req.template is not None:
        try:
            row = find_template(
                session, req.template, producer=producer, version=req.template_version
            )
        except TemplateNotFoundError as exc:  # not a missing resource: a field naming none
            raise InvalidFieldError(str(exc), field="template") from exc
        rendered = render(parts_of(row), data, field="data", max_chars=max_chars)
        version: int | None = row.version
    else:
        rendered = Rendered(subject=req.subject, text=req.body, html=None)
        version = None
    if req.channel == "email":
        if not rendered.subject:
            raise InvalidFieldError("an email needs a subject", field="subject")
        _check_subject(rendered.subject)
        if not rendered.text and not rendered.html:
            raise InvalidFieldError("an email needs a body", field="body")
    elif req.channel == "sms" and not rendered.text:
        raise InvalidFieldError("an SMS needs a body", field="body")
    return {
        "template_name": req.template,
        "template_version": version,
        "subject": rendered.subject,
        "body_text": rendered.text if rendered.text is not None else "",
        "body_html": rendered.html,
    }


def _endpoint(session: Session, url: str, *, producer: str) -> WebhookEndpoint:
    row = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.producer == producer, WebhookEndpoint.url == url
        )
    ).one_or_none()
    if row is None:
        raise InvalidFieldError(
            "no webhook endpoint is registered for this URL (POST /v1/webhook-endpoints)",
            field="to",
        )
    return row


def prepare(
    session: Session,
    req: NotificationRequest,
    *,
    producer: str,
    settings: NotificationSettings,
) -> Prepared:
    """Check and schedule a notification; with a live dedup key, return the earlier one."""
    recipient = normalise_recipient(req.channel, req.to, settings=settings)
    values = (
        _content(session, req, producer=producer, max_chars=settings.template_max_chars)
        if req.channel != "webhook"
        else {}
    )
    if req.channel == "webhook":
        if req.template is not None:
            raise InvalidFieldError("webhooks carry `data`, not templates", field="template")
        endpoint = _endpoint(session, recipient, producer=producer)
        envelope = {"type": "notification", "timestamp": None, "data": req.data or {}}
        values = {"endpoint_id": endpoint.id, "envelope": envelope}
    lock_recipient(session, channel=req.channel, recipient=recipient)
    now = session.scalar(select(func.now()))
    assert now is not None
    if req.dedup_key is not None:
        window = timedelta(minutes=settings.dedup_window_minutes)
        existing = session.scalars(
            select(Notification)
            .where(
                Notification.producer == producer,
                Notification.channel == req.channel,
                Notification.recipient == recipient,
                Notification.dedup_key == req.dedup_key,
                Notification.created_at > now - window,
            )
            .order_by(Notification.created_at.desc())
            .limit(1)
        ).first()
        if existing is not None:
            return Prepared(id=existing.id, send_at=existing.send_at, existing=existing)
    period = timedelta(seconds=settings.rate_limit_period)
    earlier = scheduled_sends(session, channel=req.channel, recipient=recipient, since=now - period)
    try:
        wanted = after_quiet_hours(max(now, req.send_at or now), req.quiet_hours)
        send_at = rate_limited_slot(earlier, wanted, count=settings.rate_limit_count, period=period)
    except OverflowError as exc:  # quiet hours or the rate limit pushed it past year 9999
        raise InvalidFieldError("too late to schedule: past year 9999", field="send_at") from exc
    values |= {
        "producer": producer,
        "channel": req.channel,
        "recipient": recipient,
        "data": req.data,
        "dedup_key": req.dedup_key,
        "send_at": send_at,
    }
    return Prepared(id=uuid7(), send_at=send_at, values=values)


def record(session: Session, prepared: Prepared, *, job_id: uuid.UUID) -> Notification:
    """Insert the notification bound to the job that delivers it."""
    values = dict(prepared.values)
    envelope = values.pop("envelope", None)
    if envelope is not None:
        # The exact bytes every retry sends, fixed once at acceptance.
        envelope["timestamp"] = prepared.send_at.isoformat()
        values["body_text"] = json.dumps(envelope, separators=(",", ":"), default=str)
    row = Notification(id=prepared.id, job_id=job_id, kind="message", **values)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Submitted:
    """An accepted notification and the job that delivers it."""

    id: uuid.UUID
    job_id: uuid.UUID
    send_at: datetime
    deduplicated: bool


def submit(
    session: Session, req: NotificationRequest, *, producer: str, settings: Settings
) -> Submitted:
    """Accept a notification and its delivery job in the caller's transaction (a live dedup
    key answers with the earlier one): the one way any domain sends a notification."""
    own = settings.section(NotificationSettings)
    prepared = prepare(session, req, producer=producer, settings=own)
    if prepared.existing is not None:
        return Submitted(prepared.id, prepared.existing.job_id, prepared.send_at, True)
    job_id = enqueue(
        session,
        DELIVER.name,
        {"notification_id": str(prepared.id)},
        producer=producer,
        run_at=prepared.send_at,
        max_attempts=max_attempts(own.retry_schedule),
        settings=settings,
    ).job_id
    record(session, prepared, job_id=job_id)
    return Submitted(prepared.id, job_id, prepared.send_at, False)
