"""Calling the provider: the key is recorded before the call, an unknown outcome is asked
about (the same call, the same key) before anything else happens, and only the provider's
answer settles an operation. Past the provider's key lifetime an attempt is never replayed
(the replay could be a new call): an authorization is searched for by its key instead."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from config import Settings
from errors import RetryableError
from tasks.payments import currencies, followups, intents, money
from tasks.payments.gateway import Gateway, Outcome, OutcomeUnknownError, Verdict
from tasks.payments.models import Intent, Operation
from tasks.payments.service import expiry_for
from tasks.payments.settings import PaymentSettings
from tasks.payments.states import Event


def idempotency_key(op: Operation, attempt: int) -> str:
    """`intent:operation:attempt`: the same on every retry of one attempt."""
    return f"{op.intent_id}:{op.kind}:{op.id}:{attempt}"


def begin_attempt(recorder: Session, op: Operation) -> str:
    """Record the attempt's key and mark the operation `unknown`, committed before the call."""
    key = idempotency_key(op, op.attempt + 1)
    recorder.execute(
        text(
            "UPDATE pay_operations SET attempt = attempt + 1, idempotency_key = :key,"
            " status = 'unknown', updated_at = now() WHERE id = :id AND attempt = :attempt"
        ),
        {"key": key, "id": op.id, "attempt": op.attempt},
    )
    return key


def note_ask(recorder: Session, op: Operation) -> None:
    """Count one more question about an unknown attempt (the janitor backs off on it)."""
    recorder.execute(
        text("UPDATE pay_operations SET asks = asks + 1, updated_at = now() WHERE id = :id"),
        {"id": op.id},
    )


def execute(
    session: Session, operation_id: str, *, recorder: Session, gateway: Gateway, settings: Settings
) -> dict[str, Any]:
    """Run one operation to its outcome (a RetryableError while the outcome is unknown)."""
    # The intent's lock serialises every operation of it, so the operation is read after it;
    # the operation's row stays unlocked so that the attempt can be recorded (and committed)
    # on the recorder's connection.
    intent, exponent = _lock_intent_of(session, operation_id)
    op = session.get_one(Operation, operation_id)
    if op.status in ("succeeded", "failed"):
        return {"status": op.status, "replayed": True}
    if op.status == "unknown" and op.idempotency_key:
        key = op.idempotency_key  # ask about the unknown attempt: never a new one before it
        note_ask(recorder, op)
        if _past_key_lifetime(session, op, settings=settings):
            return _search(session, intent, op, key=key, gateway=gateway, settings=settings)
    else:
        key = begin_attempt(recorder, op)
        # What the recorder committed, told to the session without reading it back.
        for name, value in (("attempt", op.attempt + 1), ("idempotency_key", key)):
            set_committed_value(op, name, value)
        set_committed_value(op, "status", "unknown")
    try:
        outcome = _call(gateway, op, intent, key=key, exponent=exponent)
    except OutcomeUnknownError as exc:
        raise RetryableError(f"provider outcome unknown for {key}: {exc}") from exc
    return apply(session, intent, op, outcome, settings=settings)


def _lock_intent_of(session: Session, operation_id: str) -> tuple[Intent, int]:
    """The operation's intent, locked, and its currency's exponent: one round trip."""
    row = session.execute(
        select(Intent, currencies.exponent_of(Intent.currency))
        .where(
            Intent.id
            == select(Operation.intent_id).where(Operation.id == operation_id).scalar_subquery()
        )
        .with_for_update(of=Intent)
    ).first()
    if row is None:
        session.get_one(Operation, operation_id)  # raises NoResultFound, as for any missing row
        raise AssertionError("an operation's intent exists (a foreign key)")
    return row[0], row[1]


def _past_key_lifetime(session: Session, op: Operation, *, settings: Settings) -> bool:
    """Whether the provider may have forgotten the key (counted from the operation's request,
    which is no later than its attempt's first call)."""
    now = session.scalar(select(func.now()))
    assert now is not None
    age: float = (now - op.created_at).total_seconds()
    return age > settings.section(PaymentSettings).key_lifetime


def _search(
    session: Session, intent: Intent, op: Operation, *, key: str, gateway: Gateway,
    settings: Settings,
) -> dict[str, Any]:  # fmt: skip
    """An authorization is found by its `switchyard_key` metadata (none: it never reached the
    provider, a decline); any other call stays unknown, for an operator to check."""
    if op.kind != "authorize":
        return {"status": "unknown", "reason": "past the provider's key lifetime"}
    try:
        outcome = gateway.find(key=key)
    except OutcomeUnknownError as exc:
        raise RetryableError(f"provider search failed for {key}: {exc}") from exc
    if outcome is None:
        outcome = Outcome(Verdict.DECLINED, reason="not_at_provider")
    return apply(session, intent, op, outcome, settings=settings)


def _call(gateway: Gateway, op: Operation, intent: Intent, *, key: str, exponent: int) -> Outcome:
    ref = intent.provider_ref or ""
    if op.kind == "authorize":
        return gateway.authorize(
            key=key,
            payment_method=intent.payment_method or "",
            capture=intent.capture_method == "automatic",
            amount=op.amount,
            currency=intent.currency,
            exponent=exponent,
        )
    if op.kind == "capture":
        return gateway.capture(
            key=key,
            provider_ref=ref,
            final=op.final,
            amount=op.amount,
            currency=intent.currency,
            exponent=exponent,
        )
    if op.kind == "refund":
        return gateway.refund(
            key=key,
            provider_ref=ref,
            amount=op.amount,
            currency=intent.currency,
            exponent=exponent,
        )
    return gateway.cancel(key=key, provider_ref=ref)


def apply(
    session: Session, intent: Intent, op: Operation, outcome: Outcome, *, settings: Settings
) -> dict[str, Any]:
    """Apply the provider's answer to the operation, the intent and the ledger."""
    cfg = settings.section(PaymentSettings)
    if outcome.verdict is Verdict.DECLINED:
        op.status, op.error = "failed", outcome.reason
        if op.kind == "authorize":
            intents.record(session, intent, Event.DECLINED, data={"reason": outcome.reason})
        return {"status": "failed", "reason": outcome.reason}
    if outcome.verdict is Verdict.ACTION_REQUIRED:
        op.status, op.provider_ref = "succeeded", outcome.provider_ref
        intents.record(session, intent, Event.ACTION_REQUIRED, provider_ref=outcome.provider_ref)
        return {"status": "requires_action"}
    op.status, op.provider_ref = "succeeded", outcome.provider_ref
    if op.kind == "authorize":
        hold_id = money.hold(
            session, intent, amount=intent.amount, ttl=cfg.authorization_ttl, ref=op.id
        )
        intents.record(
            session,
            intent,
            Event.AUTHORIZED,
            data={"amount": intent.amount},
            amount_capturable=intent.amount,
            hold_id=hold_id,
            provider_ref=outcome.provider_ref,
            expires_at=expiry_for(settings),
        )
        if intent.capture_method == "automatic":  # the provider captured with the authorization
            _capture(session, intent, op, amount=intent.amount, final=True, settings=settings)
    elif op.kind == "capture":
        _capture(session, intent, op, amount=op.amount, final=op.final, settings=settings)
    elif op.kind == "refund":
        back = money.fee_back(intent, given_back=op.amount)
        money.give_back(session, intent, amount=op.amount, returned_fee=back, ref=op.id)
        op.fee, op.net = -back, -(op.amount - back)
        intents.record(
            session,
            intent,
            Event.REFUNDED,
            data={"amount": op.amount, "fee_back": back},
            amount_refunded=intent.amount_refunded + op.amount,
            fee_returned=intent.fee_returned + back,
        )
        followups.notify(session, intent, Event.REFUNDED, amount=op.amount, settings=settings)
    else:
        money.release(session, intent, ref=op.id)
        intents.record(
            session,
            intent,
            Event.CANCELED,
            amount_capturable=0,
            hold_id=None,
            cancellation_reason="requested_by_customer",
        )
    session.flush()
    return {"status": op.status, "intent_status": intent.status}


def _capture(
    session: Session, intent: Intent, op: Operation, *, amount: int, final: bool, settings: Settings
) -> None:
    cfg = settings.section(PaymentSettings)
    fee = money.fee_for(amount, bps=cfg.fee_bps, fixed=cfg.fee_fixed)
    rest = intent.amount_capturable - amount
    op.fee, op.net = fee, amount - fee  # set first: flushed with the status, one UPDATE
    new_hold = money.capture(
        session, intent, amount=amount, fee=fee, final=final, ref=op.id, ttl=cfg.authorization_ttl
    )
    event = Event.CAPTURED_FINAL if final or rest == 0 else Event.CAPTURED
    intents.record(
        session,
        intent,
        event,
        data={"gross": amount, "fee": fee, "net": amount - fee, "released": rest if final else 0},
        amount_capturable=0 if event is Event.CAPTURED_FINAL else rest,
        hold_id=new_hold,
        amount_captured=intent.amount_captured + amount,
        fee=intent.fee + fee,
    )
    if event is Event.CAPTURED_FINAL:
        followups.notify(session, intent, event, amount=intent.amount_captured, settings=settings)
