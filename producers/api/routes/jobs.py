"""`/v1/jobs`: read, list, cancel and replay jobs (submitting is `routes.submit`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from errors import ConflictError, NotFoundError
from producers.api.schemas import JobPage, JobView
from store.api_keys import Principal
from store.job_actions import cancel_job, replay_job
from store.models import Job
from store.queries import attempts_of, find_job, list_jobs
from store.states import JobState
from tasks.web.auth import WRITE_SCOPE, require_scope, visible_to
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.fields import Text
from tasks.web.paging import decode_cursor, encode_cursor
from tasks.web.routing import StrictRoute

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)
Writer = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]


class JobNotFoundError(NotFoundError):
    """No job of that id, or not one the caller may see."""

    code = "job_not_found"

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"no job {job_id}")


class JobNotCancellableError(ConflictError):
    """The job runs or has finished; the problem names its state."""

    code = "job_not_cancellable"
    members = ("state",)

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.state}")
        self.state = job.state


class JobNotDeadError(ConflictError):
    """Only a dead job can be replayed; the problem names its state."""

    code = "job_not_dead"
    members = ("state",)

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.state}, not dead")
        self.state = job.state


def _load(session: SessionDep, job_id: uuid.UUID, principal: Principal) -> Job:
    job = find_job(session, job_id, producer=visible_to(principal))
    if job is None:
        raise JobNotFoundError(job_id)
    return job


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: uuid.UUID, session: SessionDep, principal: Reader) -> JobView:
    """One job with its state, result, error and every attempt."""
    job = _load(session, job_id, principal)
    return JobView.of(job, attempts_of(session, job))


@router.get("", response_model=JobPage)
def get_jobs(
    session: SessionDep,
    principal: Reader,
    state: Annotated[list[JobState] | None, Query(description="Repeat to match several.")] = None,
    type: Annotated[Text | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JobPage:
    """Jobs newest first, filtered by state and type, paginated by an opaque cursor."""
    jobs = list_jobs(
        session,
        producer=visible_to(principal),
        states=[s.value for s in state or []],
        job_type=type,
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return JobPage(
        items=[JobView.of(j) for j in jobs],
        next_cursor=encode_cursor(jobs[-1].id) if more else None,
    )


@router.post("/{job_id}/cancel", response_model=JobView)
def cancel(job_id: uuid.UUID, session: SessionDep, principal: Writer) -> JobView:
    """Cancel a job that has not started running; 409 once it runs or has finished."""
    job = _load(session, job_id, principal)
    if not cancel_job(session, job_id):
        raise JobNotCancellableError(job)
    session.refresh(job)
    view = JobView.of(job)
    session.commit()
    return view


@router.post("/{job_id}/retry", response_model=JobView, status_code=status.HTTP_202_ACCEPTED)
def retry(
    job_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: Writer
) -> JobView:
    """Replay a dead job with a fresh budget of attempts; 409 unless it is dead."""
    job = _load(session, job_id, principal)
    budget = settings.policy_for(job.type).max_attempts
    if not replay_job(session, job_id, extra_attempts=budget):
        raise JobNotDeadError(job)
    session.refresh(job)
    view = JobView.of(job)  # as committed: the relay may move it on the moment it commits
    session.commit()
    return view
