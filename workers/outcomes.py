"""What an attempt's end becomes: the retry delay, the error the ledger keeps, the outcome
recorded (retrying or dead), and what is reported of it (log line, task events, metrics)."""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from config import JobPolicy
from errors import PermanentError, RetryableError
from logs import get_logger
from store.jobs import ClaimedJob, mark_dead, mark_retrying
from store.metrics import attempt_finished
from store.states import WorkerOutcome
from tasks.registry import JobSpec
from workers.task_events import AttemptEvents

log = get_logger("switchyard.worker")


def backoff_delay(policy: JobPolicy, attempt: int, *, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, capped; a handler's `retry_after` wins."""
    if retry_after is not None:
        return retry_after
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
    return random.uniform(0, ceiling) if policy.jitter else ceiling


def retry_delay(exc: BaseException, job: ClaimedJob, *, policy: JobPolicy) -> float | None:
    """Seconds until a failed job's next attempt; None when it is dead (permanent, or its last)."""
    if isinstance(exc, PermanentError) or job.attempt >= job.max_attempts:
        return None
    retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
    return backoff_delay(policy, job.attempt, retry_after=retry_after)


def describe_error(exc: BaseException) -> dict[str, Any]:
    """The JSON the ledger keeps about a failure."""
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:2_000],
        "retryable": not isinstance(exc, PermanentError),
        "traceback": "".join(traceback.format_exception(exc))[-4_000:],
    }


@dataclass(frozen=True)
class Failure:
    """How a failed attempt was recorded: retrying (with its delay and when) or dead."""

    outcome: WorkerOutcome
    error: dict[str, Any]
    delay: float | None = None
    run_at: datetime | None = None


def record_failure(
    session: Session, job: ClaimedJob, exc: Exception, *, policy: JobPolicy
) -> Failure:
    error = describe_error(exc)
    delay = retry_delay(exc, job, policy=policy)
    if delay is None:
        mark_dead(session, job, error=error)
        return Failure(WorkerOutcome.DEAD, error)
    run_at = mark_retrying(session, job, error=error, delay_seconds=delay)
    return Failure(WorkerOutcome.RETRYING, error, delay, run_at)


def report_outcome(
    job: ClaimedJob,
    spec: JobSpec,
    events: AttemptEvents,
    outcome: WorkerOutcome,
    failure: Failure | None,
    result: Any,
    error: Exception | None,
    seconds: float,
) -> None:
    """A recorded outcome's log line, task events and metrics."""
    if outcome is WorkerOutcome.SUCCEEDED:
        log.info("job_succeeded", ms=round(seconds * 1_000, 1))
    elif failure is not None and failure.outcome is WorkerOutcome.DEAD:
        log.error("job_dead", error=failure.error["message"], error_type=failure.error["type"])
    elif failure is not None and failure.run_at is not None and failure.delay is not None:
        # Expected retries are not errors: log them at info.
        log.info(
            "job_retrying",
            delay=round(failure.delay, 3),
            run_at=failure.run_at.isoformat(),
            error=failure.error["message"],
        )
    events.finished(job, outcome, result=result, error=error, seconds=seconds)
    attempt_finished(spec.name, outcome=outcome, seconds=seconds if outcome.ran else None)
