"""The intake's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from config import MAX_ATTEMPTS
from store.models import Job, JobAttempt
from tasks.web.fields import Instant, JsonObject, Text
from tasks.web.paging import Page


class JobRequest(BaseModel):
    """A job to run."""

    model_config = ConfigDict(extra="forbid")

    type: Text = Field(min_length=1, max_length=100, examples=["system.echo"])
    payload: JsonObject = Field(default_factory=dict, examples=[{"hello": "world"}])
    # Strict: `"5"` and `true` are not priorities.
    priority: int = Field(default=0, ge=0, le=9, strict=True, description="9 runs first.")
    run_at: Instant | None = Field(default=None, description="Not before this instant.")
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS, strict=True)
    callback_url: Text | None = Field(
        default=None, max_length=2_048, description="Gets a signed webhook when the job ends."
    )
    callback_secret: Text | None = Field(
        default=None, max_length=200, description="`whsec_` secret that signs the callback."
    )


# The most jobs one `POST /v1/jobs/batch` may carry (the body size limit applies too).
MAX_BATCH_JOBS = 1_000
IDEMPOTENCY_KEY_MAX = 255


class BatchJob(JobRequest):
    """One job of a batch, with its own Idempotency-Key (the header of `POST /v1/jobs`)."""

    idempotency_key: Text | None = Field(
        default=None,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        description="Same key and job within 24 h returns the original job.",
    )


class BatchRequest(BaseModel):
    """Jobs to accept in one commit."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[BatchJob] = Field(min_length=1, max_length=MAX_BATCH_JOBS)


class JobLinks(BaseModel):
    """Where to look next."""

    self: str
    cancel: str
    retry: str


def links_for(job_id: uuid.UUID) -> JobLinks:
    """The links of one job."""
    base = f"/v1/jobs/{job_id}"
    return JobLinks(self=base, cancel=f"{base}/cancel", retry=f"{base}/retry")


class JobAccepted(BaseModel):
    """The 202 answer: the job is durable."""

    id: uuid.UUID
    state: str
    links: JobLinks


class BatchResult(BaseModel):
    """What became of the job at `index`: `status` 202 (accepted now), 200 (its key's earlier
    job) or 422 (its key was used for another job; `code`, `field` and `detail` say so)."""

    index: int
    status: int
    id: uuid.UUID | None = None
    state: str | None = None
    links: JobLinks | None = None
    code: str | None = None
    field: str | None = None
    detail: str | None = None


class BatchAccepted(BaseModel):
    """One result per submitted job, in order."""

    results: list[BatchResult]


class AttemptView(BaseModel):
    """One try at a job."""

    number: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: dict[str, Any] | None

    @classmethod
    def of(cls, row: JobAttempt) -> AttemptView:
        """Build from a row."""
        return cls(
            number=row.number,
            worker=row.worker,
            started_at=row.started_at,
            finished_at=row.finished_at,
            outcome=row.outcome,
            error=row.error,
        )


class JobView(BaseModel):
    """A job as its producer sees it."""

    id: uuid.UUID
    type: str
    queue: str
    state: str
    priority: int
    payload: dict[str, Any]
    result: Any | None
    error: dict[str, Any] | None
    attempts: int
    max_attempts: int
    producer: str
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: JobLinks
    history: list[AttemptView] | None = None

    @classmethod
    def of(cls, job: Job, history: list[JobAttempt] | None = None) -> JobView:
        """Build from a row (and, for the detail view, its attempts)."""
        return cls(
            id=job.id,
            type=job.type,
            queue=job.queue,
            state=job.state,
            priority=job.priority,
            payload=job.payload,
            result=job.result,
            error=job.error,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            producer=job.producer,
            run_at=job.run_at,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            links=links_for(job.id),
            history=None if history is None else [AttemptView.of(a) for a in history],
        )


class JobPage(Page[JobView]):
    """One page of jobs, newest first; pass `next_cursor` as `cursor` for the next."""
