"""`/v1/payment-intents`: create, confirm, capture, refund, cancel; read intents, their
history, operations and disputes.

Every POST takes an optional `Idempotency-Key` (tasks.payments.idempotency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel
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
from tasks.payments.web import KeyHeader, PaymentRoute, answer_once
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/v1/payment-intents", tags=["payments"], route_class=PaymentRoute)
Writer = Annotated[Principal, Depends(require_scope("payments:write"))]
Reader = Annotated[Principal, Depends(require_scope("payments:read"))]
Accepted = dict[str, object]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IntentView)
def create(
    body: IntentCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    request: Request,
    key: KeyHeader = None,
) -> IntentView | Response:
    """Create an intent."""

    def act() -> IntentView:
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
        return IntentView.of(intent)

    return answer_once(
        session, request, act, principal=principal, key=key, body=body, status_code=201
    )


def _accepted(
    session: SessionDep,
    request: Request,
    act: Callable[[], Operation | Intent],
    *,
    principal: Principal,
    key: str | None,
    body: BaseModel | None,
) -> Accepted | Response:
    """A 202 naming the intent and the operation `act` made (None: done without the provider),
    answered once per Idempotency-Key."""

    def accepted() -> Accepted:
        done = act()
        if isinstance(done, Intent):
            return {"intent": IntentView.of(done), "operation": None}
        return {
            "intent": IntentView.of(session.get_one(Intent, done.intent_id)),
            "operation": OperationView.of(done),
        }

    return answer_once(
        session, request, accepted, principal=principal, key=key, body=body, status_code=202
    )


@router.post("/{intent_id}/confirm", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def confirm(
    intent_id: str,
    body: Confirm,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    request: Request,
    key: KeyHeader = None,
) -> Accepted | Response:
    """Confirm: the authorization is sent to the provider by a worker."""

    def act() -> Operation:
        return service.confirm(
            session,
            intent_id,
            producer=principal.producer,
            payment_method=body.payment_method,
            settings=settings,
        )

    return _accepted(session, request, act, principal=principal, key=key, body=body)


@router.post("/{intent_id}/capture", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def capture(
    intent_id: str,
    body: Capture,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    request: Request,
    key: KeyHeader = None,
) -> Accepted | Response:
    """Capture all or part of the authorization."""

    def act() -> Operation:
        return service.request_capture(
            session,
            intent_id,
            producer=principal.producer,
            amount=body.amount,
            final=body.final,
            settings=settings,
        )

    return _accepted(session, request, act, principal=principal, key=key, body=body)


@router.post("/{intent_id}/refunds", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def refund(
    intent_id: str,
    body: Refund,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    request: Request,
    key: KeyHeader = None,
) -> Accepted | Response:
    """Refund all or part of what was captured."""

    def act() -> Operation:
        return service.request_refund(
            session, intent_id, producer=principal.producer, amount=body.amount, settings=settings
        )

    return _accepted(session, request, act, principal=principal, key=key, body=body)


@router.post("/{intent_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def cancel(
    intent_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    request: Request,
    key: KeyHeader = None,
) -> Accepted | Response:
    """Cancel the intent (an authorization is voided at the provider first)."""

    def act() -> Operation | Intent:
        return service.cancel(session, intent_id, producer=principal.producer, settings=settings)

    return _accepted(session, request, act, principal=principal, key=key, body=None)


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
