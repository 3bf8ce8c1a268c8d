"""Payment intents: create, confirm, capture, refund, cancel; no Celery, no FastAPI here.

A request that needs the provider records an operation and enqueues `payments.execute` in
the same transaction; `operations.execute` makes the call and applies its outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Exists, func, select, text
from sqlalchemy.orm import QueryableAttribute, Session

from config import Settings, get_settings
from errors import InvalidFieldError
from tasks.enqueue import enqueue
from tasks.payments import currencies, followups, intents, money
from tasks.payments.errors import AmountExceededError
from tasks.payments.models import Intent, Operation
from tasks.payments.schemas import EXECUTE
from tasks.payments.settings import PaymentSettings
from tasks.payments.states import Event, Status

OPEN = ("pending", "unknown")


def create_intent(
    session: Session,
    *,
    producer: str,
    amount: int,
    currency: str,
    capture_method: str = "automatic",
    payment_method: str | None = None,
    metadata: dict[str, Any] | None = None,
    receipt_email: str | None = None,
    settings: Settings | None = None,
) -> Intent:
    """A new intent: `requires_confirmation` with a payment method, else one is required."""
    currencies.exponent(session, currency)  # refuses a code the table does not hold
    if receipt_email is not None:
        receipt_email = followups.recipient(receipt_email, settings=settings or get_settings())
    status = Status.REQUIRES_CONFIRMATION if payment_method else Status.REQUIRES_PAYMENT_METHOD
    intent = Intent(
        id=intents.new_id("pi"),
        producer=producer,
        amount=amount,
        currency=currency,
        status=status.value,
        capture_method=capture_method,
        payment_method=payment_method,
        metadata_=metadata or {},
        receipt_email=receipt_email,
        amount_capturable=0,
        amount_captured=0,
        amount_refunded=0,
        amount_disputed=0,
        amount_lost=0,
        fee=0,
        fee_returned=0,
    )
    first = intents.start_chain(intent, data={"amount": amount, "currency": currency})
    session.add(intent)
    session.flush()
    session.add(first)
    session.flush()
    return intent


def _operation(
    session: Session,
    intent: Intent,
    kind: str,
    *,
    amount: int,
    final: bool = True,
    settings: Settings,
) -> Operation:
    op = Operation(
        id=intents.new_id("op"),
        intent_id=intent.id,
        kind=kind,
        amount=amount,
        final=final,
        status="pending",
        attempt=0,
    )
    session.add(op)
    session.flush()
    enqueue(
        session, EXECUTE.name, {"operation_id": op.id}, producer=intent.producer, settings=settings
    )
    return op


def confirm(
    session: Session,
    intent_id: str,
    *,
    producer: str,
    payment_method: str | None,
    settings: Settings,
) -> Operation:
    """Confirm the intent: it goes `processing` and its authorization is sent."""
    intent = intents.locked(session, intent_id, producer=producer)
    if payment_method is not None:
        intents.record(
            session,
            intent,
            Event.ATTACHED,
            data={"payment_method": payment_method},
            payment_method=payment_method,
        )
    intents.record(session, intent, Event.CONFIRMED)
    return _operation(session, intent, "authorize", amount=intent.amount, settings=settings)


def _in_flight(session: Session, intent: Intent, kind: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Operation.amount), 0)).where(
            Operation.intent_id == intent.id,
            Operation.kind == kind,
            Operation.status.in_(OPEN),
        )
    )
    return int(total or 0)


def request_capture(
    session: Session,
    intent_id: str,
    *,
    producer: str,
    amount: int | None,
    final: bool,
    settings: Settings,
) -> Operation:
    """Capture `amount` (all that is capturable by default); never above what is capturable."""
    intent = intents.locked(session, intent_id, producer=producer)
    intents.require(intent, Event.CAPTURED)
    available = intent.amount_capturable - _in_flight(session, intent, "capture")
    amount = available if amount is None else amount
    _within(amount, available, what="capturable")
    return _operation(
        session,
        intent,
        "capture",
        amount=amount,
        final=final or amount == available,
        settings=settings,
    )


def request_refund(
    session: Session, intent_id: str, *, producer: str, amount: int | None, settings: Settings
) -> Operation:
    """Refund `amount` (all that is left by default); never above what was captured."""
    intent = intents.locked(session, intent_id, producer=producer)
    intents.require(intent, Event.REFUNDED)
    available = refundable(intent) - _in_flight(session, intent, "refund")
    amount = available if amount is None else amount
    _within(amount, available, what="refundable")
    return _operation(session, intent, "refund", amount=amount, settings=settings)


def refundable(intent: Intent) -> int:
    """What may still be given back: captured less refunded and disputed."""
    return (
        intent.amount_captured
        - intent.amount_refunded
        - intent.amount_disputed
        - intent.amount_lost
    )


def cancel(
    session: Session, intent_id: str, *, producer: str, settings: Settings
) -> Intent | Operation:
    """Cancel: at once before authorization; an authorization is voided at the provider first."""
    intent = intents.locked(session, intent_id, producer=producer)
    if intent.status == Status.REQUIRES_CAPTURE and intent.provider_ref:
        if _in_flight(session, intent, "capture"):
            raise AmountExceededError("a capture is in flight", field="status")
        return _operation(session, intent, "cancel", amount=0, settings=settings)
    return intents.record(
        session, intent, Event.CANCELED, cancellation_reason="requested_by_customer"
    )


def _within(amount: int, available: int, *, what: str) -> None:
    if type(amount) is not int or amount <= 0:
        raise InvalidFieldError("amount must be a positive integer", field="amount")
    if amount > available:
        raise AmountExceededError(f"amount {amount} is above the {available} still {what}")


def expire_authorizations(session: Session, *, settings: Settings, limit: int = 200) -> int:
    """Cancel authorizations past their expiry and void their holds; how many expired. An
    intent with a call to the provider in flight waits: a capture the provider may already
    have made must be applied to the hold it was made against."""
    due = session.scalars(
        select(Intent.id)
        .where(
            Intent.status == Status.REQUIRES_CAPTURE,
            Intent.expires_at <= func.now(),
            ~_calls_open(Intent.id),
        )
        .order_by(Intent.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    expired = 0
    for intent_id in due:
        intent = intents.locked(session, intent_id)
        if session.scalar(select(_calls_open(intent.id))):
            continue  # requested after the query's snapshot, before its lock
        expired += 1
        money.release(session, intent, ref="expired")
        intents.record(
            session,
            intent,
            Event.EXPIRED,
            data={"released": intent.amount_capturable},
            amount_capturable=0,
            hold_id=None,
            cancellation_reason="expired",
        )
    return expired


def _calls_open(intent_id: QueryableAttribute[str] | str) -> Exists:
    return (
        select(Operation.id)
        .where(Operation.intent_id == intent_id, Operation.status.in_(OPEN))
        .exists()
    )


def ask_about_unknowns(
    session: Session, *, settings: Settings, now: bool = False, limit: int = 200
) -> int:
    """The janitor: an operation still `unknown` after the next step of `janitor_schedule`
    (by how often it was asked; at once with `now`) gets a new `payments.execute`, which asks
    the provider first (one job per operation and step: the job's idempotency key) — past
    `key_lifetime`, an authorization by a search, and no other kind (an operator's). How many
    operations were due."""
    cfg = settings.section(PaymentSettings)
    schedule = [0.0] if now else cfg.janitor_schedule
    due = session.execute(
        text(
            "SELECT o.id, o.asks, i.producer FROM pay_operations o JOIN pay_intents i"
            " ON i.id = o.intent_id WHERE o.status = 'unknown' AND o.updated_at <= now()"
            " - make_interval(secs => (CAST(:schedule AS float8[]))[least(o.asks + 1, :n)])"
            # past the key's lifetime only an authorization can be found (by its metadata)
            " AND (o.kind = 'authorize' OR o.created_at > now() - make_interval(secs => :life))"
            " ORDER BY o.updated_at LIMIT :limit"
        ),
        {"schedule": schedule, "n": len(schedule), "limit": limit, "life": cfg.key_lifetime},
    ).all()
    for op_id, asks, producer in due:
        enqueue(
            session,
            EXECUTE.name,
            {"operation_id": op_id},
            producer=producer,
            settings=settings,
            idempotency_key=f"janitor:{op_id}:{asks}",
        )
    return len(due)


def expiry_for(settings: Settings) -> datetime:
    """When an authorization made now expires."""
    return datetime.now(UTC) + timedelta(
        seconds=settings.section(PaymentSettings).authorization_ttl
    )
