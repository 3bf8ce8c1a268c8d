"""Moving an intent: one guarded UPDATE per transition, and its hash-chained history."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.ids import uuid7
from tasks.payments.errors import IllegalTransitionError, IntentNotFoundError
from tasks.payments.models import Intent, IntentEvent
from tasks.payments.states import TRANSITIONS, Event, Status

GENESIS = "0" * 64


def new_id(prefix: str) -> str:
    """A time-sortable id with a Stripe-like prefix (`pi_…`, `op_…`)."""
    return f"{prefix}_{uuid7().hex}"


def link_hash(prev: str, entry: dict[str, Any]) -> str:
    """The hash of one history entry chained to the previous entry's hash."""
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


def locked(session: Session, intent_id: str, *, producer: str | None = None) -> Intent:
    """The intent, its row locked for this transaction (404 if not the producer's)."""
    query = select(Intent).where(Intent.id == intent_id).with_for_update()
    if producer is not None:
        query = query.where(Intent.producer == producer)
    intent = session.scalars(query).first()
    if intent is None:
        raise IntentNotFoundError(f"no payment intent {intent_id}")
    return intent


def require(intent: Intent, event: Event) -> None:
    """Refuse `event` unless it is legal from the intent's status."""
    if Status(intent.status) not in TRANSITIONS[event]:
        raise IllegalTransitionError(
            f"cannot {event.value} a payment intent that is {intent.status}"
        )


def record(
    session: Session,
    intent: Intent,
    event: Event,
    *,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> Intent:
    """Apply `event` as a legal transition (a guarded UPDATE) with `changes`, appending history."""
    allowed = TRANSITIONS[event]
    current = Status(intent.status)
    to = allowed.get(current)
    if to is None:
        raise IllegalTransitionError(f"cannot {event.value} a payment intent that is {current}")
    seq = (
        session.scalar(select(func.max(IntentEvent.seq)).where(IntentEvent.intent_id == intent.id))
        or 0
    ) + 1
    entry = {
        "seq": seq,
        "event": event.value,
        "from": current.value,
        "to": to.value,
        "data": data or {},
    }
    prev = intent.chain_head
    digest = link_hash(prev, entry)
    done = session.execute(
        update(Intent)
        .where(
            Intent.id == intent.id,
            Intent.status.in_([s.value for s in allowed]),
            Intent.chain_head == prev,
        )
        .values(status=to.value, chain_head=digest, updated_at=func.now(), **changes)
        .returning(Intent)
        # The returned row refreshes `intent` in place: no SELECT to read it back.
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()
    if done is None:
        raise IllegalTransitionError(f"payment intent {intent.id} moved meanwhile")
    session.add(
        IntentEvent(
            intent_id=intent.id,
            seq=seq,
            event=event.value,
            from_status=current.value,
            to_status=to.value,
            data=data or {},
            prev_hash=prev,
            hash=digest,
        )
    )
    session.flush()
    return intent


def start_chain(intent: Intent, *, data: dict[str, Any]) -> IntentEvent:
    """The first history entry of a new intent (its creation)."""
    entry = {"seq": 0, "event": "created", "from": None, "to": intent.status, "data": data}
    digest = link_hash(GENESIS, entry)
    intent.chain_head = digest
    return IntentEvent(
        intent_id=intent.id,
        seq=0,
        event="created",
        from_status=None,
        to_status=intent.status,
        data=data,
        prev_hash=GENESIS,
        hash=digest,
    )


def verify_chain(session: Session, intent: Intent) -> bool:
    """Whether the intent's history hashes link up to its chain head."""
    prev = GENESIS
    rows = session.scalars(
        select(IntentEvent).where(IntentEvent.intent_id == intent.id).order_by(IntentEvent.seq)
    )
    for row in rows:
        entry = {
            "seq": row.seq,
            "event": row.event,
            "from": row.from_status,
            "to": row.to_status,
            "data": row.data,
        }
        if row.prev_hash != prev or link_hash(prev, entry) != row.hash:
            return False
        prev = row.hash
    return prev == intent.chain_head
