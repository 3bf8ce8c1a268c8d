"""Applying a recorded provider event, only as a legal transition.

An event is news about an intent, not an order: before comparing, every operation of the
intent whose outcome is unknown is asked about (the same call with the same key: how Stripe
is asked what it did), so the local state is the provider's as far as Switchyard caused it.
Then the event is `unchanged` (the intent is already there), `stale` (a later state holds),
`applied` (asking, or the dispute it opens or closes, moved the intent), `ignored` (not an
event Switchyard acts on, or no intent of ours) or `unexplained`: a state no operation of ours
explains (a status or refund made elsewhere, a dispute that cannot apply), raised as an
`unexplained` reconciliation exception in the same transaction. A duplicate, a late or a
reordered event therefore changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import Settings
from tasks.payments import currencies, disputes, intents, operations, reconciliation
from tasks.payments.errors import AmountExceededError, IllegalTransitionError
from tasks.payments.gateway import Gateway
from tasks.payments.models import Dispute, Intent, Operation, WebhookEvent
from tasks.payments.settings import PaymentSettings
from tasks.payments.states import Status

S = Status
# The intent's status each payment_intent event reports.
REPORTED: dict[str, Status] = {
    "payment_intent.processing": S.PROCESSING,
    "payment_intent.requires_action": S.REQUIRES_ACTION,
    "payment_intent.amount_capturable_updated": S.REQUIRES_CAPTURE,
    "payment_intent.succeeded": S.SUCCEEDED,
    "payment_intent.payment_failed": S.FAILED,
    "payment_intent.canceled": S.CANCELED,
}
# How far along an intent is: an event reporting an earlier stage than the intent's is stale.
STAGE: dict[Status, int] = {
    S.REQUIRES_PAYMENT_METHOD: 0,
    S.REQUIRES_CONFIRMATION: 1,
    S.PROCESSING: 2,
    S.REQUIRES_ACTION: 3,
    S.REQUIRES_CAPTURE: 4,
    S.SUCCEEDED: 5,
    S.CANCELED: 5,
    S.FAILED: 5,
}
DISPUTES = ("charge.dispute.created", "charge.dispute.closed")


def process(
    session: Session, event_id: str, *, recorder: Session, gateway: Gateway, settings: Settings
) -> dict[str, Any]:
    """Apply the event once; what it did."""
    event = session.get_one(WebhookEvent, event_id, with_for_update=True)
    if event.status != "received":
        return {"status": event.status, "replayed": True}
    obj: dict[str, Any] = event.payload["data"]["object"]
    intent = _intent_of(session, event.type, obj)
    if intent is None:
        return _done(event, "ignored", "no payment intent of ours")
    event.intent_id = intent.id
    if (
        event.type not in REPORTED
        and event.type not in DISPUTES
        and event.type != "charge.refunded"
    ):
        return _done(event, "ignored", f"{event.type} is not acted on")
    before = intent.chain_head
    _ask_about_unknowns(session, intent, recorder=recorder, gateway=gateway, settings=settings)
    session.refresh(intent)
    moved = intent.chain_head != before
    if event.type in REPORTED:
        done = _compare(event, intent, REPORTED[event.type], moved=moved)
    elif event.type == "charge.refunded":
        refunded = _iso(session, intent, obj.get("amount_refunded"), settings=settings)
        done = _compare_amounts(event, intent.amount_refunded, refunded, moved=moved)
    else:
        try:
            with session.begin_nested():
                done = _dispute(session, event, intent, obj, settings=settings)
        except (IllegalTransitionError, AmountExceededError) as exc:
            done = _done(event, "unexplained", f"the dispute cannot apply: {exc}")
    if event.status == "unexplained":
        reconciliation.raise_unexplained(session, event, intent)
    return done


def _done(event: WebhookEvent, status: str, outcome: str) -> dict[str, Any]:
    event.status, event.outcome, event.processed_at = status, outcome[:500], func.now()
    return {"status": status, "outcome": outcome}


def _intent_of(session: Session, kind: str, obj: dict[str, Any]) -> Intent | None:
    """The local intent the object is about: by the provider's id, or (an authorization whose
    answer was lost) by the key Switchyard put in its metadata."""
    ref = obj.get("id") if kind.startswith("payment_intent.") else obj.get("payment_intent")
    if isinstance(ref, str):
        found = session.scalars(select(Intent).where(Intent.provider_ref == ref)).first()
        if found is not None:
            return found
    metadata = obj.get("metadata")
    key = metadata.get("switchyard_key") if isinstance(metadata, dict) else None
    if isinstance(key, str) and ":" in key:
        return session.get(Intent, key.split(":", 1)[0])
    return None


def _ask_about_unknowns(
    session: Session, intent: Intent, *, recorder: Session, gateway: Gateway, settings: Settings
) -> None:
    """Ask the provider about each unknown operation (a RetryableError while it cannot say)."""
    intents.locked(session, intent.id)
    unknown = session.scalars(
        select(Operation.id)
        .where(Operation.intent_id == intent.id, Operation.status == "unknown")
        .order_by(Operation.id)
    ).all()
    for op_id in unknown:
        operations.execute(session, op_id, recorder=recorder, gateway=gateway, settings=settings)


def _compare(
    event: WebhookEvent, intent: Intent, reported: Status, *, moved: bool
) -> dict[str, Any]:
    local = Status(intent.status)
    if local == reported:
        return _done(event, "applied" if moved else "unchanged", f"the intent is {local}")
    if STAGE[local] >= STAGE[reported]:
        return _done(event, "stale", f"reports {reported}; the intent is already {local}")
    return _done(
        event, "unexplained", f"reports {reported}; no operation of ours explains it ({local})"
    )


def _compare_amounts(
    event: WebhookEvent, local: int, reported: int, *, moved: bool
) -> dict[str, Any]:
    if local == reported:
        return _done(event, "applied" if moved else "unchanged", f"{local} refunded")
    if local > reported:
        return _done(event, "stale", f"reports {reported} refunded; {local} already")
    return _done(
        event, "unexplained", f"reports {reported} refunded; no operation of ours explains it"
    )


def _iso(session: Session, intent: Intent, amount: Any, *, settings: Settings) -> int:
    """A provider amount in the intent's ISO minor units."""
    if type(amount) is not int or amount < 0:
        return -1
    return currencies.from_provider(
        amount,
        intent.currency,
        iso_exponent=currencies.exponent(session, intent.currency),
        overrides=settings.section(PaymentSettings).provider_exponents,
    )


def _dispute(
    session: Session,
    event: WebhookEvent,
    intent: Intent,
    obj: dict[str, Any],
    *,
    settings: Settings,
) -> dict[str, Any]:
    """Open the dispute (a `closed` event that overtook its `created` opens it first), then
    close it if the event says it is over."""
    dispute_id, status = obj.get("id"), obj.get("status")
    amount = _iso(session, intent, obj.get("amount"), settings=settings)
    if not isinstance(dispute_id, str) or amount <= 0:
        return _done(event, "ignored", "not a dispute object")
    fee = _iso(session, intent, _fee(obj), settings=settings)
    opened = disputes.open_dispute(
        session, intent.id, dispute_id=dispute_id, amount=amount, fee=max(fee, 0), settings=settings
    )
    closed = False
    if event.type == "charge.dispute.closed" and status in ("won", "lost"):
        closed = disputes.close_dispute(session, dispute_id, won=status == "won", settings=settings)
    if opened or closed:
        done = f"closed {status}" if closed else "opened"
        return _done(event, "applied", f"dispute {dispute_id} {done}")
    row = session.get_one(Dispute, dispute_id)
    stale = event.type == "charge.dispute.created" and row.status != "open"
    return _done(event, "stale" if stale else "unchanged", f"dispute {dispute_id} is {row.status}")


def _fee(obj: dict[str, Any]) -> Any:
    """The dispute's fee: that of its first balance transaction (the withdrawal)."""
    moves = obj.get("balance_transactions")
    if isinstance(moves, list) and moves and isinstance(moves[0], dict):
        return moves[0].get("fee", 0)
    return 0
