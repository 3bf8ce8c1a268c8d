"""The transactional outbox: rows that the relay turns into broker messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.job_statements import ASYNC_COMMIT
from store.models import Job, OutboxMessage
from store.sql import INSERT_OUTBOX
from store.states import JobState
from store.transitions import Transition, state_guard

NOTIFY_CHANNEL = "switchyard_outbox"


class Publishable(Protocol):
    """What the relay needs of a job to publish it: any row or object with these attributes."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...


def add_outbox(
    session: Session, jobs: Sequence[Publishable], *, available_at: datetime | None = None
) -> None:
    """Queue jobs for the relay, due at `available_at` (None: now), waking it at commit."""
    # The one way an outbox row is added: one statement for any number of jobs. The intake's
    # job insert carries the same statement as a CTE (`store.sql`), to save a round trip.
    if not jobs:
        return
    params = {
        "job_id": [j.id for j in jobs],
        "job_type": [j.type for j in jobs],
        "queue": [j.queue for j in jobs],
        "priority": [j.priority for j in jobs],
        "available_at": available_at,
        "notify": NOTIFY_CHANNEL,
    }
    session.connection().exec_driver_sql(INSERT_OUTBOX, params)


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
    """Delete published rows and move their jobs to `queued` (only if nothing moved them since),
    committing asynchronously: a crash that undoes it only publishes the rows again, and the
    claim's guard drops a duplicate."""
    session.execute(select(ASYNC_COMMIT))
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
