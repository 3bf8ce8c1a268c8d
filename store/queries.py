"""Reading the ledger: one job, its attempts, and keyset-paginated lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Job, JobAttempt
from store.states import AttemptOutcome, JobState


def find_job(session: Session, job_id: uuid.UUID, *, producer: str | None) -> Job | None:
    """The job, if it exists and (unless `producer` is None) belongs to `producer`."""
    stmt = select(Job).where(Job.id == job_id)
    if producer is not None:
        stmt = stmt.where(Job.producer == producer)
    return session.scalars(stmt).one_or_none()


def types_of(session: Session, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The type of each of these jobs that exists."""
    rows = session.execute(select(Job.id, Job.type).where(Job.id.in_(list(job_ids))))
    return {job_id: job_type for job_id, job_type in rows}


def attempts_of(session: Session, job: Job) -> list[JobAttempt]:
    """Every attempt at a job, in order: the ended ones' rows, then the one running, if any
    (kept on the job row until it ends; shown as an unsaved row)."""
    ended = list(
        session.scalars(
            select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number)
        )
    )
    if job.state != JobState.RUNNING or job.claimed_by is None or job.claimed_at is None:
        return ended
    running = JobAttempt(
        job_id=job.id,
        number=job.attempts,
        worker=job.claimed_by,
        started_at=job.claimed_at,
        outcome=AttemptOutcome.RUNNING,
    )
    return [*ended, running]


def list_jobs(
    session: Session,
    *,
    producer: str | None,
    states: Sequence[str] = (),
    job_type: str | None = None,
    before: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Job]:
    """Jobs newest first, strictly older than `before` (a keyset cursor)."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if producer is not None:
        stmt = stmt.where(Job.producer == producer)
    if states:
        stmt = stmt.where(Job.state.in_(list(states)))
    if job_type is not None:
        stmt = stmt.where(Job.type == job_type)
    if before is not None:
        stmt = stmt.where(Job.id < before)
    return list(session.scalars(stmt))
