"""Disputes: the provider withdraws a charge's amount and a fee; won, the amount comes back;
lost, it is final. Each dispute is a row opened once and closed once, so a repeated or
reordered provider event changes nothing."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config import Settings
from tasks.payments import followups, intents, money
from tasks.payments.errors import AmountExceededError
from tasks.payments.models import Dispute, Intent
from tasks.payments.service import refundable
from tasks.payments.states import Event


def open_dispute(
    session: Session, intent_id: str, *, dispute_id: str, amount: int, fee: int, settings: Settings
) -> bool:
    """Withdraw `amount` and charge `fee` for the provider's dispute; False if already open."""
    intent = intents.locked(session, intent_id)
    opened = session.execute(
        insert(Dispute)
        .values(id=dispute_id, intent_id=intent.id, amount=amount, fee=fee, status="open")
        .on_conflict_do_nothing()
        .returning(Dispute.id)
    ).first()
    if opened is None:
        return False
    intents.require(intent, Event.DISPUTE_OPENED)
    if amount <= 0 or amount > refundable(intent):  # refunds + disputes never above captured
        raise AmountExceededError(f"a dispute of {amount} is above the {refundable(intent)} left")
    ref = dispute_id
    back = money.fee_back(intent, given_back=amount)
    money.give_back(session, intent, amount=amount, returned_fee=back, ref=f"dispute:{ref}")
    money.dispute_fee(session, intent, amount=fee, ref=ref)
    intents.record(
        session,
        intent,
        Event.DISPUTE_OPENED,
        data={"amount": amount, "fee": fee, "ref": ref},
        amount_disputed=intent.amount_disputed + amount,
        fee_returned=intent.fee_returned + back,
    )
    followups.notify(session, intent, Event.DISPUTE_OPENED, amount=amount, settings=settings)
    return True


def close_dispute(session: Session, dispute_id: str, *, won: bool, settings: Settings) -> bool:
    """Won: the amount is reinstated (its returned fee retaken); lost: final. False if the
    dispute was closed already."""
    dispute = session.get_one(Dispute, dispute_id)
    intent = intents.locked(session, dispute.intent_id)
    closed = session.execute(
        update(Dispute)
        .where(Dispute.id == dispute_id, Dispute.status == "open")
        .values(status="won" if won else "lost", closed_at=func.now())
        .returning(Dispute.amount)
        .execution_options(synchronize_session=False)
    ).first()
    if closed is None:
        return False
    amount = int(closed[0])
    if won:
        _reinstate(session, intent, amount=amount, ref=dispute_id)
    else:
        intents.record(
            session,
            intent,
            Event.DISPUTE_LOST,
            data={"amount": amount, "ref": dispute_id},
            amount_disputed=intent.amount_disputed - amount,
            amount_lost=intent.amount_lost + amount,
        )
    event = Event.DISPUTE_WON if won else Event.DISPUTE_LOST
    followups.notify(session, intent, event, amount=amount, settings=settings)
    return True


def _reinstate(session: Session, intent: Intent, *, amount: int, ref: str) -> None:
    given = intent.amount_refunded + intent.amount_disputed - amount + intent.amount_lost
    keep_returned = intent.fee * given // intent.amount_captured
    retaken = intent.fee_returned - keep_returned
    money.reinstate(session, intent, amount=amount, fee=retaken, ref=ref)
    intents.record(
        session,
        intent,
        Event.DISPUTE_WON,
        data={"amount": amount, "ref": ref},
        amount_disputed=intent.amount_disputed - amount,
        fee_returned=keep_returned,
    )
