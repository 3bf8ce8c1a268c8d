"""`/v1/jobs`: submit, read, list, cancel and replay jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from producers.api.auth import (
    WRITE_SCOPE,
    CredentialsDep,
    require_scope,
    unauthenticated,
    visible_to,
)
from producers.api.deps import SessionDep, SettingsDep
from producers.api.errors import ProblemError
from producers.api.paging import decode_cursor, encode_cursor
from producers.api.schemas import JobAccepted, JobPage, JobRequest, JobView, links_for
from producers.enqueue import InvalidJobError, JobDraft, draft_job
from store.api_keys import Principal
from store.errors import SwitchyardError
from store.jobs import cancel_job, replay_job
from store.metrics import job_accepted
from store.models import Job, JobState
from store.queries import attempts_of, find_job, list_jobs
from tasks.registry import UnknownJobTypeError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
Writer = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key and body within 24 h returns the original job.",
    ),
]


def _load(session: SessionDep, job_id: uuid.UUID, principal: Principal) -> Job:
    job = find_job(session, job_id, producer=visible_to(principal))
    if job is None:
        raise ProblemError(404, "job_not_found", f"no job {job_id}")
    return job


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
)
async def submit_job(
    body: JobRequest,
    request: Request,
    credentials: CredentialsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept a job: 202 means it is committed to the ledger and will reach a terminal state."""
    if credentials is None:
        raise unauthenticated()
    try:
        draft: JobDraft | SwitchyardError = draft_job(
            body.type,
            body.payload,
            producer="",  # the writer fills in the key's producer once it has authenticated it
            priority=body.priority,
            run_at=body.run_at,
            max_attempts=body.max_attempts,
            idempotency_key=idempotency_key,
            callback_url=body.callback_url,
            callback_secret=body.callback_secret,
            settings=request.app.state.settings,
        )
    except (InvalidJobError, UnknownJobTypeError) as exc:
        draft = exc  # told only after the key checks out: a bad key gets 401, not the schema
    outcome = await request.app.state.intake.submit(credentials.credentials, draft)
    job_accepted(body.type, created=outcome.created)
    headers = {"Location": f"/v1/jobs/{outcome.job_id}"}
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    accepted = JobAccepted(
        id=outcome.job_id, state=JobState.ACCEPTED, links=links_for(outcome.job_id)
    )
    # Built here rather than through response_model (kept for the OpenAPI docs): one
    # serialisation instead of a validate-then-serialise round on the hottest route.
    return Response(
        accepted.model_dump_json(), status.HTTP_202_ACCEPTED, headers, media_type="application/json"
    )


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: uuid.UUID, session: SessionDep, principal: Reader) -> JobView:
    """One job with its state, result, error and every attempt."""
    job = _load(session, job_id, principal)
    return JobView.of(job, attempts_of(session, job_id))


@router.get("", response_model=JobPage)
def get_jobs(
    session: SessionDep,
    principal: Reader,
    state: Annotated[list[JobState] | None, Query(description="Repeat to match several.")] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
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
        raise ProblemError(
            409, "job_not_cancellable", f"job {job_id} is {job.state}", state=job.state
        )
    session.commit()
    session.refresh(job)
    return JobView.of(job)


@router.post("/{job_id}/retry", response_model=JobView, status_code=status.HTTP_202_ACCEPTED)
def retry(
    job_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: Writer
) -> JobView:
    """Replay a dead job with a fresh budget of attempts; 409 unless it is dead."""
    job = _load(session, job_id, principal)
    budget = settings.policy_for(job.type).max_attempts
    if not replay_job(session, job_id, extra_attempts=budget):
        raise ProblemError(
            409, "job_not_dead", f"job {job_id} is {job.state}, not dead", state=job.state
        )
    session.commit()
    session.refresh(job)
    return JobView.of(job)
