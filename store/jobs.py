"""Job state transitions: each one a guarded UPDATE, so two actors never move the same job."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from errors import ConflictError
from store.job_statements import Completion, claim_statement, finish_statement
from store.models import Job, JobAttempt
from store.outbox import add_outbox
from store.states import AttemptOutcome, JobState
from store.transitions import Transition, state_guard


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds under a lease, as of its claim."""

    id: uuid.UUID
    type: str
    queue: str
    payload: dict[str, Any]
    priority: int
    attempt: int
    max_attempts: int
    producer: str
    claim: uuid.UUID  # this claim's own token: only it may record the attempt's outcome


class LeaseLostError(ConflictError):
    """The job is no longer ours: its lease expired and someone else moved it."""

    code = "lease_lost"


def claim_jobs(
    session: Session,
    job_ids: Sequence[uuid.UUID],
    *,
    job_type: str,
    worker: str,
    lease_seconds: float,
) -> list[ClaimedJob]:
    """Take each job of type `job_type` for one attempt, in the order given, under a token of
    this claim's own; a job not ours to run (duplicate, early, done, of another type, unknown)
    is left out. The claim commits asynchronously: a crash may undo it (see ASYNC_COMMIT)."""
    params = {
        "claim_ids": list(job_ids),
        "claim_token": uuid.uuid4(),
        "claim_type": job_type,
        "claim_lease": timedelta(seconds=lease_seconds),
        "claim_worker": worker,
    }
    rows = session.execute(claim_statement(), params).all()
    claimed = {
        row.id: ClaimedJob(
            id=row.id,
            type=row.type,
            queue=row.queue,
            payload=row.payload,
            priority=row.priority,
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            producer=row.producer,
            claim=row.claim_token,
        )
        for row in rows
    }
    # A job listed twice (two outbox rows for it in one batch) is claimed and run once.
    return [claimed[job_id] for job_id in dict.fromkeys(job_ids) if job_id in claimed]


def release_jobs(session: Session, jobs: Sequence[ClaimedJob]) -> int:
    """Undo the claim of jobs that were never started (their batch ran out of lease): back
    to `queued` with the attempt uncounted (it has no row yet), and published again. Returns
    how many."""
    if not jobs:
        return 0
    pairs = [(job.id, job.claim) for job in jobs]
    rows = session.execute(
        update(Job)
        .where(
            state_guard(Job.state, Transition.RELEASE), tuple_(Job.id, Job.claim_token).in_(pairs)
        )
        .values(
            state=JobState.QUEUED,
            attempts=Job.attempts - 1,
            lease_until=None,
            claimed_by=None,
            claimed_at=None,
            started_at=case((Job.attempts == 1, None), else_=Job.started_at),
            updated_at=func.now(),
        )
        .returning(Job.id, Job.type, Job.queue, Job.priority)
    ).all()
    add_outbox(session, rows)
    return len(rows)


def _finish(
    session: Session,
    job: ClaimedJob,
    *,
    transition: Transition,
    outcome: AttemptOutcome,
    error: dict[str, Any] | None,
    now: tuple[str, ...] = (),
    writes: tuple[Completion, ...] = (),
    write_params: dict[str, Any] | None = None,
    **values: Any,
) -> None:
    params = dict(write_params or {})  # first: a write's parameter never overrides the finish's
    params.update({f"set_{c}": v for c, v in values.items()})
    params.update(
        finish_id=job.id,
        finish_token=job.claim,
        finish_outcome=outcome,
        finish_error=error,
    )
    statement = finish_statement(transition, tuple(sorted(values)), now, writes)
    if session.execute(statement, params).one_or_none() is None:
        raise LeaseLostError(f"job {job.id} attempt {job.attempt} no longer holds its lease")


def mark_succeeded(
    session: Session,
    job: ClaimedJob,
    *,
    result: Any,
    writes: tuple[Completion, ...] = (),
    write_params: dict[str, Any] | None = None,
) -> None:
    """Record the result and `succeeded`, with the handler's `writes` (bound to `write_params`),
    in one statement."""
    _finish(
        session,
        job,
        transition=Transition.SUCCEED,
        outcome=AttemptOutcome.SUCCEEDED,
        error=None,
        now=("finished_at",),
        writes=writes,
        write_params=write_params,
        state=JobState.SUCCEEDED,
        result=result,
    )


def mark_retrying(
    session: Session, job: ClaimedJob, *, error: dict[str, Any], delay_seconds: float
) -> datetime:
    """Schedule another attempt after `delay_seconds`; returns when it becomes due."""
    run_at = session.execute(select(func.now() + timedelta(seconds=delay_seconds))).scalar_one()
    _finish(
        session,
        job,
        transition=Transition.RETRY,
        outcome=AttemptOutcome.RETRYING,
        error=error,
        state=JobState.RETRYING,
        run_at=run_at,
    )
    add_outbox(session, [job], available_at=run_at)
    return run_at


def mark_dead(session: Session, job: ClaimedJob, *, error: dict[str, Any]) -> None:
    """Give up on the job: a permanent error or its last attempt."""
    _finish(
        session,
        job,
        transition=Transition.FAIL,
        outcome=AttemptOutcome.DEAD,
        error=error,
        now=("finished_at",),
        state=JobState.DEAD,
    )


@dataclass(frozen=True)
class ReapedJob:
    """A job whose worker vanished, and what the reaper did with it."""

    id: uuid.UUID
    type: str
    state: str
    attempt: int


def reap_expired_leases(
    session: Session, *, quarantine_after: int, limit: int = 1_000
) -> list[ReapedJob]:
    """Return jobs whose lease expired to `retrying`, or to `dead` once they lost N workers."""
    expired = (
        select(Job.id)
        .where(state_guard(Job.state, Transition.REAP), Job.lease_until < func.now())
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    quarantine = Job.lost_count + 1 >= quarantine_after
    exhausted = Job.attempts >= Job.max_attempts
    give_up = quarantine | exhausted
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(expired))
        .values(
            state=case((give_up, JobState.DEAD.value), else_=JobState.RETRYING.value),
            finished_at=case((give_up, func.now()), else_=None),
            error=func.jsonb_build_object(
                "type",
                "worker_lost",
                "message",
                case(
                    (
                        quarantine,
                        func.format(
                            "quarantined: lost its worker %s times (attempt %s of %s)",
                            Job.lost_count + 1,
                            Job.attempts,
                            Job.max_attempts,
                        ),
                    ),
                    (
                        exhausted,
                        func.format(
                            "lease expired on the last attempt (%s of %s)",
                            Job.attempts,
                            Job.max_attempts,
                        ),
                    ),
                    else_="lease expired: the worker vanished",
                ),
            ),
            lost_count=Job.lost_count + 1,
            lease_until=None,
            run_at=func.now(),
            updated_at=func.now(),
        )
        .returning(
            *(Job.id, Job.type, Job.queue, Job.priority, Job.state, Job.attempts),
            *(Job.claimed_by, Job.claimed_at),
        )
    ).all()
    if rows:  # each lost attempt's row, written once, now that it has ended
        lost = {"type": "worker_lost", "message": "lease expired"}
        session.execute(
            insert(JobAttempt).values(
                [
                    {
                        "job_id": r.id,
                        "number": r.attempts,
                        "worker": r.claimed_by,
                        "started_at": r.claimed_at,
                        "finished_at": func.now(),
                        "outcome": AttemptOutcome.LOST,
                        "error": lost,
                    }
                    for r in rows
                ]
            )
        )
    add_outbox(session, [r for r in rows if r.state == JobState.RETRYING])
    return [ReapedJob(id=r.id, type=r.type, state=r.state, attempt=r.attempts) for r in rows]
