"""`/v1/payment-intents`: create, confirm, capture, refund, cancel; read intents, their
history, operations and disputes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy import select

from store.api_keys import Principal
from tasks.payments import service
from tasks.payments.api_schemas import (
    Capture,
    Confirm,
    DisputeView,
    HistoryEntry,
    IntentCreate,
    IntentView,
    OperationView,
    Refund,
)
from tasks.payments.errors import IntentNotFoundError
from tasks.payments.models import Dispute, Intent, IntentEvent, Operation
from tasks.payments.web import PaymentRoute
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/v1/payment-intents", tags=["payments"], route_class=PaymentRoute)
Writer = Annotated[Principal, Depends(require_scope("payments:write"))]
Reader = Annotated[Principal, Depends(require_scope("payments:read"))]
Accepted = dict[str, object]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(
    body: IntentCreate, session: SessionDep, settings: SettingsDep, principal: Writer
) -> IntentView:
    """Create an intent."""
    intent = service.create_intent(
        session,
        producer=principal.producer,
        amount=body.amount,
        currency=body.currency,
        capture_method=body.capture_method,
        payment_method=body.payment_method,
        metadata=body.metadata,
        receipt_email=body.receipt_email,
        settings=settings,
    )
    session.commit()
    return IntentView.of(intent)


def _accepted(session: SessionDep, op: Operation) -> Accepted:
    intent = session.get_one(Intent, op.intent_id)
    session.commit()
    return {"intent": IntentView.of(intent), "operation": OperationView.of(op)}


@router.post("/{intent_id}/confirm", status_code=status.HTTP_202_ACCEPTED)
def confirm(
    intent_id: str, body: Confirm, session: SessionDep, settings: SettingsDep, principal: Writer
) -> Accepted:
    """Confirm: the authorization is sent to the provider by a worker."""
    op = service.confirm(
        session,
        intent_id,
        producer=principal.producer,
        payment_method=body.payment_method,
        settings=settings,
    )
    return _accepted(session, op)


@router.post("/{intent_id}/capture", status_code=status.HTTP_202_ACCEPTED)
def capture(
    intent_id: str, body: Capture, session: SessionDep, settings: SettingsDep, principal: Writer
) -> Accepted:
    """Capture all or part of the authorization."""
    op = service.request_capture(
        session,
        intent_id,
        producer=principal.producer,
        amount=body.amount,
        final=body.final,
        settings=settings,
    )
    return _accepted(session, op)


@router.post("/{intent_id}/refunds", status_code=status.HTTP_202_ACCEPTED)
def refund(
    intent_id: str, body: Refund, session: SessionDep, settings: SettingsDep, principal: Writer
) -> Accepted:
    """Refund all or part of what was captured."""
    op = service.request_refund(
        session, intent_id, producer=principal.producer, amount=body.amount, settings=settings
    )
    return _accepted(session, op)


@router.post("/{intent_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel(
    intent_id: str, session: SessionDep, settings: SettingsDep, principal: Writer
) -> Accepted:
    """Cancel the intent (an authorization is voided at the provider first)."""
    done = service.cancel(session, intent_id, producer=principal.producer, settings=settings)
    if isinstance(done, Operation):
        return _accepted(session, done)
    session.commit()
    return {"intent": IntentView.of(done), "operation": None}


@router.get("/{intent_id}")
def read(intent_id: str, session: SessionDep, principal: Reader) -> IntentView:
    """One intent."""
    return IntentView.of(_visible(session, intent_id, principal))


@router.get("/{intent_id}/history")
def history(intent_id: str, session: SessionDep, principal: Reader) -> list[HistoryEntry]:
    """Every event of the intent, oldest first (each hash-chained to the one before)."""
    _visible(session, intent_id, principal)
    rows = session.scalars(
        select(IntentEvent).where(IntentEvent.intent_id == intent_id).order_by(IntentEvent.seq)
    )
    return [
        HistoryEntry(
            seq=r.seq,
            event=r.event,
            from_status=r.from_status,
            to_status=r.to_status,
            data=r.data,
            hash=r.hash,
            at=r.at,
        )
        for r in rows
    ]


@router.get("/{intent_id}/operations")
def operations(intent_id: str, session: SessionDep, principal: Reader) -> list[OperationView]:
    """The intent's provider operations: gross, fee and net per capture."""
    _visible(session, intent_id, principal)
    rows = session.scalars(
        select(Operation).where(Operation.intent_id == intent_id).order_by(Operation.id)
    )
    return [OperationView.of(r) for r in rows]


@router.get("/{intent_id}/disputes")
def disputes(intent_id: str, session: SessionDep, principal: Reader) -> list[DisputeView]:
    """The intent's disputes, oldest first: open, won or lost, with amount and fee. Read
    only: disputes are opened and closed by the provider, and arrive as its webhooks."""
    _visible(session, intent_id, principal)
    rows = session.scalars(
        select(Dispute)
        .where(Dispute.intent_id == intent_id)
        .order_by(Dispute.created_at, Dispute.id)
    )
    return [DisputeView.of(r) for r in rows]


def _visible(session: SessionDep, intent_id: str, principal: Principal) -> Intent:
    producer = None if principal.allows("admin") else principal.producer
    query = select(Intent).where(Intent.id == intent_id)
    if producer is not None:
        query = query.where(Intent.producer == producer)
    intent = session.scalars(query).first()
    if intent is None:
        raise IntentNotFoundError(f"no payment intent {intent_id}")
    return intent
