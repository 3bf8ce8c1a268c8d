"""Provider webhooks in: the signature checked on the raw body, then the event recorded once
by its id together with the job that applies it, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import stripe
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from tasks.enqueue import enqueue
from tasks.payments.errors import InvalidSignatureError
from tasks.payments.models import WebhookEvent
from tasks.payments.schemas import WEBHOOK
from tasks.web import strict
from tasks.web.fields import JsonObject, Text

HEADER = "Stripe-Signature"
PRODUCER = "provider:stripe"  # who the processing jobs are submitted by


class EventData(BaseModel):
    """An event's `data`: the object as it was when the event happened."""

    model_config = ConfigDict(extra="allow", strict=True)
    object: JsonObject


class StripeEvent(BaseModel):
    """A Stripe event: the parts Switchyard reads, checked; the rest kept as it came (the
    strict parser has already refused what PostgreSQL could not store)."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: Text = Field(min_length=1, max_length=255)
    type: Text = Field(min_length=1, max_length=100)
    data: EventData


def verified_event(
    raw: bytes, header: str | None, *, secrets: Sequence[str], tolerance: int
) -> StripeEvent:
    """The event `raw` holds, if `header` signs it with one of `secrets` (400 naming the
    header if not); parsed strictly (422 naming the field)."""
    if not header:
        raise InvalidSignatureError("the webhook carries no signature", field=HEADER)
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise strict.InvalidEncodingError("the body must be UTF-8 JSON", field="body") from exc
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError:
            continue
        return _event(strict.loads(raw))
    raise InvalidSignatureError(
        "no signature matches a webhook secret within the time tolerance", field=HEADER
    )


def _event(value: Any) -> StripeEvent:
    try:
        return StripeEvent.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidFieldError(
            first["msg"], field=".".join(["body", *map(str, first["loc"])])
        ) from exc


def record_event(session: Session, event: StripeEvent, *, settings: Settings) -> bool:
    """Record the event and enqueue its processing; False if its id was recorded before."""
    obj = event.data.object
    object_id = obj.get("id")
    inserted = session.execute(
        insert(WebhookEvent)
        .values(
            id=event.id,
            provider="stripe",
            type=event.type,
            object_id=object_id if isinstance(object_id, str) and len(object_id) <= 255 else None,
            payload=event.model_dump(mode="json"),
            status="received",
        )
        .on_conflict_do_nothing()
        .returning(WebhookEvent.id)
    ).first()
    if inserted is None:
        return False
    enqueue(session, WEBHOOK.name, {"event_id": event.id}, producer=PRODUCER, settings=settings)
    return True
