"""`POST /v1/jobs/batch`: many jobs in one request and one commit, each with its own key.

A malformed batch is refused whole (422 naming `jobs.<index>.<field>`): nothing is written.
A well-formed one is inserted by `enqueue_many` in one transaction, and each job gets its own
result — accepted, the earlier job of its Idempotency-Key, or refused because that key was used
for another job. The answer is 202 when every job is durable, 207 when some job was refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from errors import InvalidFieldError, SwitchyardError
from producers.api.schemas import BatchAccepted, BatchJob, BatchRequest, BatchResult, links_for
from store.api_keys import Principal
from store.metrics import job_accepted
from tasks.enqueue import JobDraft, Outcome, draft_job, enqueue_many
from tasks.web.auth import WRITE_SCOPE, require_scope
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.routing import StrictRoute

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)
Writer = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]


def _draft(index: int, job: BatchJob, *, producer: str, settings: SettingsDep) -> JobDraft:
    """The job's draft, or InvalidFieldError naming `jobs.<index>.<field>`."""
    try:
        return draft_job(
            job.type,
            job.payload,
            producer=producer,
            priority=job.priority,
            run_at=job.run_at,
            max_attempts=job.max_attempts,
            idempotency_key=job.idempotency_key,
            callback_url=job.callback_url,
            callback_secret=job.callback_secret,
            settings=settings,
        )
    except InvalidFieldError as exc:
        errors = [{**e, "field": f"jobs.{index}.{e['field']}"} for e in exc.errors or []]
        raise InvalidFieldError(str(exc), field=f"jobs.{index}.{exc.field}", errors=errors) from exc


def _result(index: int, job: BatchJob, outcome: Outcome) -> BatchResult:
    if isinstance(outcome, SwitchyardError):
        return BatchResult(
            index=index,
            status=outcome.status,
            code=outcome.code,
            field=f"jobs.{index}.idempotency_key",
            detail=str(outcome),
        )
    if isinstance(outcome, Exception):  # not an answer: a fault, for the error handler
        raise outcome
    job_accepted(job.type, created=outcome.created)
    return BatchResult(
        index=index,
        status=status.HTTP_202_ACCEPTED if outcome.created else status.HTTP_200_OK,
        id=outcome.job_id,
        links=links_for(outcome.job_id),
    )


@router.post(
    "/batch",
    response_model=BatchAccepted,
    response_model_exclude_none=True,
    status_code=status.HTTP_202_ACCEPTED,
    responses={207: {"model": BatchAccepted, "description": "Some job was refused."}},
)
def submit_batch(
    body: BatchRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
) -> BatchAccepted:
    """Accept up to 1,000 jobs in one commit; 202 means every one of them is durable."""
    drafts = [
        _draft(i, job, producer=principal.producer, settings=settings)
        for i, job in enumerate(body.jobs)
    ]
    outcomes = enqueue_many(session, drafts)
    session.commit()
    pairs = zip(body.jobs, outcomes, strict=True)
    results = [_result(i, job, outcome) for i, (job, outcome) in enumerate(pairs)]
    if any(r.status >= 400 for r in results):
        response.status_code = status.HTTP_207_MULTI_STATUS
    return BatchAccepted(results=results)
