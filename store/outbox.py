"""The transactional outbox: rows that the relay turns into broker messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    all_,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Session

from store.job_statements import ASYNC_COMMIT
from store.models import Job, OutboxMessage, table_of
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


@cache
def _lock_due_statement() -> Select[Any]:
    outbox, jobs = table_of(OutboxMessage), table_of(Job)
    return (
        select(
            outbox.c.id,
            outbox.c.job_id,
            outbox.c.job_type,
            outbox.c.queue,
            outbox.c.priority,
            jobs.c.lost_count,
        )
        .join(jobs, jobs.c.id == outbox.c.job_id)
        .where(outbox.c.available_at <= func.now())
        .order_by(outbox.c.available_at, outbox.c.id)
        .limit(bindparam("due_limit", type_=Integer))
        .with_for_update(of=outbox, skip_locked=True)
    )


def lock_due(session: Session, *, limit: int) -> list[DueMessage]:
    """Lock up to `limit` due rows that no other relay holds, most urgent first."""
    rows = session.execute(_lock_due_statement(), {"due_limit": limit})
    return [DueMessage(*row) for row in rows]


def _seconds_until_due(excluding: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
    """Seconds from now until the earliest outbox row (but those in `excluding`) is due."""
    outbox = table_of(OutboxMessage)
    earliest = select(func.min(outbox.c.available_at))
    if excluding is not None:
        earliest = earliest.where(outbox.c.id != all_(excluding))
    return func.extract("epoch", earliest.scalar_subquery() - func.now())


@cache
def _mark_sent_statement() -> Select[Any]:
    """One statement: delete the sent rows, queue their jobs, commit asynchronously, and say
    when the earliest row left is due (the deletes are not visible to the same statement's
    SELECT, hence the exclusion)."""
    outbox, jobs = table_of(OutboxMessage), table_of(Job)
    ids = bindparam("sent_ids", type_=ARRAY(BigInteger))
    gone = delete(outbox).where(outbox.c.id == any_(ids)).cte("gone")
    queued = (
        update(jobs)
        .where(
            jobs.c.id == any_(bindparam("sent_job_ids", type_=ARRAY(UUID(as_uuid=True)))),
            state_guard(jobs.c.state, Transition.PUBLISH),
        )
        .values(state=JobState.QUEUED, updated_at=func.now())
        .cte("queued")
    )
    return select(ASYNC_COMMIT, _seconds_until_due(excluding=ids)).add_cte(gone, queued)


def _seconds(delay: Any) -> float | None:
    return None if delay is None else max(0.0, float(delay))


def mark_sent(session: Session, messages: list[DueMessage]) -> float | None:
    """Delete published rows and move their jobs to `queued` (only if nothing moved them since),
    committing asynchronously: a crash that undoes it only publishes the rows again, and the
    claim's guard drops a duplicate. Returns the seconds until the earliest row left becomes
    due (0 if one is due now; None if none is left), in the same round trip."""
    params = {"sent_ids": [m.id for m in messages], "sent_job_ids": [m.job_id for m in messages]}
    _, delay = session.execute(_mark_sent_statement(), params).one()
    return _seconds(delay)


def seconds_until_next_due(session: Session) -> float | None:
    """Seconds until the earliest pending row becomes due (0 if one is due now)."""
    return _seconds(session.execute(select(_seconds_until_due())).scalar_one())
