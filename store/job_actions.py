"""What an operator or a producer does to a job from outside: cancel it before it starts, or
replay it once dead. Each a guarded UPDATE (store.transitions), like every transition."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, update
from sqlalchemy.orm import Session

from store.models import Job, OutboxMessage
from store.outbox import add_outbox
from store.states import JobState
from store.transitions import Transition, state_guard


def cancel_job(session: Session, job_id: uuid.UUID) -> bool:
    """Cancel a job that has not started; False if it is running or finished."""
    # Outbox rows first, then the job: the relay locks in that order too, so the two never
    # deadlock. A row deleted for a job that turns out not cancellable was only a wake-up call.
    session.execute(delete(OutboxMessage).where(OutboxMessage.job_id == job_id))
    moved = session.execute(
        update(Job)
        .where(Job.id == job_id, state_guard(Job.state, Transition.CANCEL))
        .values(
            state=JobState.CANCELLED,
            finished_at=func.now(),
            updated_at=func.now(),
            error={"type": "cancelled", "message": "cancelled by request"},
        )
        .returning(Job.id)
    ).one_or_none()
    return moved is not None


def replay_job(session: Session, job_id: uuid.UUID, *, extra_attempts: int) -> bool:
    """Give a dead job `extra_attempts` more tries, starting now; False if it is not dead."""
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, state_guard(Job.state, Transition.REPLAY))
        .values(
            state=JobState.RETRYING,
            max_attempts=Job.attempts + extra_attempts,
            lost_count=0,
            run_at=func.now(),
            finished_at=None,
            updated_at=func.now(),
        )
        .returning(Job.id, Job.type, Job.queue, Job.priority)
    ).one_or_none()
    if row is None:
        return False
    add_outbox(session, [row])
    return True
