"""An intent's follow-ups: a receipt or an alert through the notifications domain, created in
the transaction that records the transition, once per transition.

The notification's job carries the idempotency key `payments:<intent>:<seq>:<event>` (and the
notification the same dedup key): a transition is recorded once, so is its notice, and a
retry whose first try rolled back makes it afresh with the same key.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from tasks.enqueue import enqueue
from tasks.notifications.retries import max_attempts
from tasks.notifications.schemas import DELIVER, NotificationRequest
from tasks.notifications.service import normalise_recipient, prepare, record
from tasks.notifications.settings import NotificationSettings
from tasks.payments import currencies
from tasks.payments.models import Intent, IntentEvent
from tasks.payments.settings import PaymentSettings
from tasks.payments.states import Event

# What each transition tells, and to whom: the payer's receipt or the operator's alert.
SUBJECTS: dict[Event, str] = {
    Event.CAPTURED_FINAL: "Receipt: {amount} paid",
    Event.REFUNDED: "Receipt: {amount} refunded",
    Event.DISPUTE_OPENED: "Alert: a payment of {amount} is disputed",
    Event.DISPUTE_WON: "Alert: a dispute of {amount} was won",
    Event.DISPUTE_LOST: "Alert: a dispute of {amount} was lost",
}
RECEIPTS = frozenset({Event.CAPTURED_FINAL, Event.REFUNDED})


def recipient(address: str, *, settings: Settings) -> str:
    """A receipt address as the email channel will take it (422 `receipt_email` if not)."""
    cfg = settings.section(NotificationSettings)
    try:
        return normalise_recipient("email", address, settings=cfg)
    except InvalidFieldError as exc:
        raise InvalidFieldError(str(exc), field="receipt_email") from exc


def notice_key(intent: Intent, event: Event, seq: int) -> str:
    """The notice's idempotency key: one per transition of the intent."""
    return f"payments:{intent.id}:{seq}:{event.value}"


def notify(
    session: Session, intent: Intent, event: Event, *, amount: int, settings: Settings
) -> None:
    """Create the notice of the transition just recorded (none without a recipient)."""
    to = (
        intent.receipt_email if event in RECEIPTS else settings.section(PaymentSettings).alert_email
    )
    if to is None:
        return
    seq = session.scalar(
        select(func.max(IntentEvent.seq)).where(IntentEvent.intent_id == intent.id)
    )
    key = notice_key(intent, event, seq or 0)
    shown = f"{_decimal(session, intent, amount)} {intent.currency}"
    request = NotificationRequest(
        channel="email",
        to=to,
        subject=SUBJECTS[event].format(amount=shown),
        body=f"Payment {intent.id}: {event.value}, {shown}. Status: {intent.status}.",
        data={"intent": intent.id, "event": event.value, "amount": amount},
        dedup_key=key,
    )
    cfg = settings.section(NotificationSettings)
    prepared = prepare(session, request, producer=intent.producer, settings=cfg)
    if prepared.existing is not None:
        return
    done = enqueue(
        session,
        DELIVER.name,
        {"notification_id": str(prepared.id)},
        producer=intent.producer,
        run_at=prepared.send_at,
        max_attempts=max_attempts(cfg.retry_schedule),
        idempotency_key=key,
        settings=settings,
    )
    if done.created:
        record(session, prepared, job_id=done.job_id)


def _decimal(session: Session, intent: Intent, amount: int) -> Decimal:
    return Decimal(amount).scaleb(-currencies.exponent(session, intent.currency))
