"""`POST /v1/payments/webhooks/stripe`: the provider's events in, signed, recorded once."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from config import Settings
from store.db import transaction
from tasks.payments.cards import refuse_card_numbers
from tasks.payments.settings import PaymentSettings
from tasks.payments.webhooks import HEADER, StripeEvent, record_event, verified_event
from tasks.web.deps import SettingsDep

router = APIRouter(prefix="/v1/payments/webhooks", tags=["payments"])
# What the route reads of a Stripe event (the body is read raw: the signature covers its bytes).
EVENT = {
    "type": "object",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string", "maxLength": 255},
        "type": {"type": "string", "maxLength": 100},
        "data": {"type": "object", "properties": {"object": {"type": "object"}}},
    },
}


class WebhookReceived(BaseModel):
    """The 200 answer: the event (and the job that applies it) is committed."""

    id: str
    duplicate: bool


def _record(settings: Settings, event: StripeEvent) -> bool:
    with transaction(settings) as session:
        return record_event(session, event, settings=settings)


@router.post(
    "/stripe",
    openapi_extra={
        "parameters": [{"name": HEADER, "in": "header", "required": True, "schema": {}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": EVENT}}},
    },
)
async def stripe_webhook(request: Request, settings: SettingsDep) -> WebhookReceived:
    """Take one Stripe event: its signature is checked on the raw body (400 naming the header
    if it fails), then it is recorded by its id with its processing job, and answered at once;
    a repeat of the id is answered the same and changes nothing."""
    raw = await request.body()
    cfg = settings.section(PaymentSettings)
    event = verified_event(
        raw,
        request.headers.get(HEADER),
        secrets=[s.get_secret_value() for s in cfg.webhook_secrets],
        tolerance=cfg.webhook_tolerance,
    )
    refuse_card_numbers(raw)  # the signature is this route's authentication: it comes first
    created = await run_in_threadpool(_record, settings, event)
    return WebhookReceived(id=event.id, duplicate=not created)
