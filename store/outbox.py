"""The transactional outbox: rows that the relay turns into broker messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from store.bulk import insert_outbox_rows
from store.models import Job, JobState, OutboxMessage, table_of
from store.transitions import Transition, state_guard

NOTIFY_CHANNEL = "switchyard_outbox"


def add_outbox(
    session: Session,
    job_id: uuid.UUID,
    *,
    job_type: str,
    queue: str,
    priority: int,
    available_at: datetime | None = None,
) -> None:
    """Queue one job for publishing, and wake the relay when the transaction commits."""
    values = {"job_id": job_id, "job_type": job_type, "queue": queue, "priority": priority}
    if available_at is not None:
        values["available_at"] = available_at
    statement = _queue_statement(available_at is not None)
    session.execute(statement, {f"outbox_{name}": value for name, value in values.items()})


@cache
def _queue_statement(delayed: bool) -> Select[Any]:
    """INSERT the row and NOTIFY in one statement (one round trip), built once per shape."""
    table = table_of(OutboxMessage)
    columns = ("job_id", "job_type", "queue", "priority") + (("available_at",) if delayed else ())
    values = {c: bindparam(f"outbox_{c}", type_=table.c[c].type) for c in columns}
    queued = insert(table).values(**values).cte("queued")
    return select(func.pg_notify(NOTIFY_CHANNEL, "")).add_cte(queued)


@dataclass(frozen=True)
class DueMessage:
    """One outbox row ready to publish."""

    id: int
    job_id: uuid.UUID
    job_type: str
    queue: str
    priority: int
    lost_count: int = 0


def lock_due(session: Session, *, limit: int) -> list[DueMessage]:
    """Lock up to `limit` due rows that no other relay holds, most urgent first."""
    stmt = (
        select(
            OutboxMessage.id,
            OutboxMessage.job_id,
            OutboxMessage.job_type,
            OutboxMessage.queue,
            OutboxMessage.priority,
            Job.lost_count,
        )
        .join(Job, Job.id == OutboxMessage.job_id)
        .where(OutboxMessage.available_at <= func.now())
        .order_by(OutboxMessage.available_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(of=OutboxMessage, skip_locked=True)
    )
    return [DueMessage(*row) for row in session.execute(stmt)]


def mark_sent(session: Session, messages: list[DueMessage]) -> None:
    """Delete published rows and move their jobs to `queued` (only if nothing moved them since)."""
    ids = [m.id for m in messages]
    job_ids = [m.job_id for m in messages]
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), state_guard(Job.state, Transition.PUBLISH))
        .values(state=JobState.QUEUED, updated_at=func.now())
    )


def seconds_until_next_due(session: Session) -> float | None:
    """Seconds until the earliest pending row becomes due (0 if one is due now)."""
    delay = session.execute(
        select(func.extract("epoch", func.min(OutboxMessage.available_at) - func.now()))
    ).scalar_one()
    return None if delay is None else max(0.0, float(delay))


def add_outbox_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Queue many jobs (rows as for `add_outbox`) with one INSERT and one NOTIFY."""
    insert_outbox_rows(session, rows, notify=NOTIFY_CHANNEL)
