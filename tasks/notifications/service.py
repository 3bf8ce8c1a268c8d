"""Accepting notifications: validate, render, deduplicate, schedule, record."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from store.ids import uuid7
from tasks.enqueue import draft_job, enqueue_many
from tasks.notifications.models import Notification, WebhookEndpoint
from tasks.notifications.retries import max_attempts
from tasks.notifications.scheduling import Schedules, after_quiet_hours, rate_limited_slot
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
    schedules: Schedules | None = None,
) -> Prepared:
    """Check and schedule a notification; with a live dedup key, return the earlier one.
    Acceptances that share `schedules` lock and read each recipient once; the caller adds
    the send it accepts to them."""
    schedules = schedules or Schedules()
    recipient = schedules.recipients.get((req.channel, req.to))
    if recipient is None:  # a refused one raises, so only accepted forms are kept
        recipient = normalise_recipient(req.channel, req.to, settings=settings)
        schedules.recipients[(req.channel, req.to)] = recipient
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
    now = schedules.clock(session)
    period = timedelta(seconds=settings.rate_limit_period)
    earlier = schedules.of(
        session, channel=req.channel, recipient=recipient, since=now - period,
        count=settings.rate_limit_count,
    )  # fmt: skip
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


# Every column a message is accepted with; one JSON document for all rows (json.dumps runs in
# C), so a batch of any size is one short statement that psycopg parses once.
COLUMNS = (
    "id", "job_id", "kind", "producer", "channel", "recipient", "template_name",
    "template_version", "subject", "body_text", "body_html", "data", "dedup_key",
    "endpoint_id", "send_at",
)  # fmt: skip
INSERT_MESSAGES = text(f"""INSERT INTO notifications ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM json_populate_recordset(NULL::notifications, CAST(:rows AS json))
""")


def _row(prepared: Prepared, *, job_id: uuid.UUID) -> dict[str, Any]:
    values = dict(prepared.values)
    envelope = values.pop("envelope", None)
    if envelope is not None:
        # The exact bytes every retry sends, fixed once at acceptance.
        envelope["timestamp"] = prepared.send_at.isoformat()
        values["body_text"] = json.dumps(envelope, separators=(",", ":"), default=str)
    return {**values, "id": prepared.id, "job_id": job_id, "kind": "message"}


def record_many(session: Session, accepted: Sequence[tuple[Prepared, uuid.UUID]]) -> None:
    """Insert the notifications, each bound to the job that delivers it, in one statement."""
    rows = [_row(prepared, job_id=job_id) for prepared, job_id in accepted]
    if rows:
        session.execute(INSERT_MESSAGES, {"rows": json.dumps(rows, default=str)})


def record(session: Session, prepared: Prepared, *, job_id: uuid.UUID) -> None:
    """Insert the notification bound to the job that delivers it."""
    record_many(session, [(prepared, job_id)])


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
    return submit_many(session, [req], producer=producer, settings=settings)[0]


def submit_many(
    session: Session,
    requests: Sequence[NotificationRequest],
    *,
    producer: str,
    settings: Settings,
) -> list[Submitted]:
    """`submit` for several requests, in order: each recipient locked and its schedule read
    once, the delivery jobs inserted in one round trip and the notifications in one flush. A
    request whose dedup key an earlier one of the same call holds answers with that one."""
    own = settings.section(NotificationSettings)
    schedules = Schedules()
    answers: list[Prepared] = []
    new: list[Prepared] = []
    fresh: dict[tuple[str, str, str], Prepared] = {}
    for req in requests:
        prepared = prepare(session, req, producer=producer, settings=own, schedules=schedules)
        if prepared.existing is None and req.dedup_key is not None:
            key = (req.channel, prepared.values["recipient"], req.dedup_key)
            if key in fresh:  # an earlier request of this call holds the key
                answers.append(fresh[key])
                continue
            fresh[key] = prepared
        if prepared.existing is None:
            schedules.sends[(req.channel, prepared.values["recipient"])].append(prepared.send_at)
            new.append(prepared)
        answers.append(prepared)
    drafts = [
        draft_job(
            DELIVER.name, {"notification_id": str(p.id)}, producer=producer, run_at=p.send_at,
            max_attempts=max_attempts(own.retry_schedule), settings=settings,
        )
        for p in new
    ]  # fmt: skip
    jobs: dict[uuid.UUID, uuid.UUID] = {}
    for p, outcome in zip(new, enqueue_many(session, drafts), strict=True):
        if isinstance(outcome, Exception):  # no idempotency key, so nothing refuses a draft
            raise outcome
        jobs[p.id] = outcome.job_id
    record_many(session, [(p, jobs[p.id]) for p in new])
    seen: set[uuid.UUID] = set()
    out = []
    for p in answers:
        if p.existing is not None:
            out.append(Submitted(p.id, p.existing.job_id, p.send_at, True))
        else:
            out.append(Submitted(p.id, jobs[p.id], p.send_at, p.id in seen))
            seen.add(p.id)
    return out
