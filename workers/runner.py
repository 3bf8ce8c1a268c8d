"""Running a batch: claim its jobs under one lease, run each handler, record each outcome."""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import ExitStack
from typing import Any

import structlog
from celery.exceptions import Reject
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from config import JobPolicy, Settings
from errors import PermanentError
from logs import get_logger
from store.db import autocommit, transaction
from store.jobs import (
    ClaimedJob,
    LeaseLostError,
    claim_jobs,
    mark_succeeded,
    release_jobs,
)
from store.metrics import attempt_finished, job_started
from store.states import WorkerOutcome
from tasks.context import Handler, JobContext
from tasks.registry import JobSpec
from workers.group_commit import GroupCommit
from workers.outcomes import Failure, record_failure, report_outcome
from workers.poison import drop_unclaimed
from workers.task_events import NO_EVENTS, AttemptEvents

log = get_logger("switchyard.worker")
DB_DOWN_REQUEUE_DELAY = 1.0


def worker_name() -> str:
    """This process as the ledger names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _connect_and_claim(
    stack: ExitStack, job_ids: list[uuid.UUID], *, job_type: str, settings: Settings, lease: int
) -> tuple[Session, list[ClaimedJob]]:
    try:
        # The batch's own connection, in autocommit: the claim is one statement, atomic on
        # its own, and so is each job's end (no BEGIN/COMMIT round trips).
        session = stack.enter_context(autocommit(settings))
        claimed = claim_jobs(
            session, job_ids, job_type=job_type, worker=worker_name(), lease_seconds=lease
        )
        return session, claimed
    except DBAPIError as exc:
        # The ledger is unreachable: hand the message back to the broker rather than lose it.
        log.warning(
            "claim_failed_database_unavailable",
            job_ids=[str(i) for i in job_ids],
            error=str(exc),
        )
        time.sleep(DB_DOWN_REQUEUE_DELAY)
        raise Reject("database unavailable", requeue=True) from exc


def _parse_payload(spec: JobSpec, job: ClaimedJob) -> Any:
    try:
        return spec.payload.model_validate(job.payload)
    except ValidationError as exc:  # no retry can fix a payload the schema refuses
        raise PermanentError(f"payload no longer matches {spec.name}: {exc}") from exc


def _succeed(
    context: JobContext, session: Session, group: GroupCommit | None, *, result: Any
) -> None:
    """Record `succeeded`: in the job's transaction if the handler opened one, else in the
    batch's group transaction, else as one statement on the batch's connection."""
    record = {"result": result, "writes": context.writes, "write_params": context.write_params}
    if context.opened is not None:
        mark_succeeded(context.opened, context.job, **record)
        return
    if group is not None:
        # One statement, no savepoint: a lost lease moves nothing, so there is nothing to undo.
        mark_succeeded(group.session, context.job, **record)
        return
    try:
        mark_succeeded(session, context.job, **record)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # The batch's connection dropped (it sat idle while the handler worked): try once
        # more on a new one. The finish is guarded, so if the first one did commit, this one
        # finds nothing to move (LeaseLostError) rather than recording twice.
        with autocommit(context.settings) as fresh:
            mark_succeeded(fresh, context.job, **record)


def _run_one(
    job: ClaimedJob,
    *,
    session: Session,
    spec: JobSpec,
    handler: Handler,
    settings: Settings,
    policy: JobPolicy,
    batch: list[ClaimedJob],
    memo: dict[str, Any],
    events: AttemptEvents,
    group: GroupCommit | None,
) -> WorkerOutcome:
    """Run the job's handler and record its outcome: on its own (the job's transaction, or
    one statement on the batch's connection), or in a savepoint of the batch's `group`, when
    what is reported about it waits for the group's commit."""
    with structlog.contextvars.bound_contextvars(
        job_id=str(job.id), job_type=spec.name, attempt=job.attempt
    ):
        job_started(job.id, job_type=spec.name, attempt=job.attempt)
        events.started(job)
        started = time.perf_counter()
        result: Any = None
        error: Exception | None = None
        failure: Failure | None = None
        try:
            payload = _parse_payload(spec, job)
            with ExitStack() as job_transaction:
                # In a group, the job's transaction is a savepoint of the group's.
                own = group.job if group is not None else lambda: transaction(settings)
                context = JobContext(
                    job,
                    settings,
                    log,
                    autocommit=session,
                    begin=lambda: job_transaction.enter_context(own()),
                    batch=batch,
                    memo=memo,
                )
                result = handler(context, payload)
                _succeed(context, session, group, result=result)
        except LeaseLostError as exc:
            log.warning("job_lease_lost", error=str(exc))
            outcome = WorkerOutcome.LEASE_LOST
        except Exception as exc:
            error = exc
            try:
                if group is not None:
                    failure = record_failure(group.session, job, exc, policy=policy)
                else:
                    with transaction(settings) as failed:
                        failure = record_failure(failed, job, exc, policy=policy)
                outcome = failure.outcome
            except LeaseLostError as lost:  # e.g. the reaper moved it while it failed
                log.warning("job_lease_lost", error=str(lost))
                outcome = WorkerOutcome.LEASE_LOST
        else:
            outcome = WorkerOutcome.SUCCEEDED
        seconds = time.perf_counter() - started

        def report() -> None:
            with structlog.contextvars.bound_contextvars(
                job_id=str(job.id), job_type=spec.name, attempt=job.attempt
            ):
                report_outcome(job, spec, events, outcome, failure, result, error, seconds)

        if group is not None and outcome is not WorkerOutcome.LEASE_LOST:
            group.after_commit(job, report)
        else:
            report()
        return outcome


def _release(jobs: list[ClaimedJob], *, settings: Settings, job_type: str, why: str) -> bool:
    """Release `jobs`; False if some no longer held their claim."""
    with transaction(settings) as session:
        released = release_jobs(session, jobs)
    log.warning("batch_released", why=why, job_type=job_type, released=released)
    for _ in range(released):
        attempt_finished(job_type, outcome=WorkerOutcome.RELEASED, seconds=None)
    return released == len(jobs)


def _hand_back(job_ids: list[str], *, job_type: str, why: str) -> Reject:
    """The batch's message, handed back to the broker: a claim PostgreSQL forgot in a crash
    leaves its job claimable and unpublished, and the message, delivered again, claims it
    again (that claim drops every job that is held or finished)."""
    log.warning("batch_handed_back", why=why, job_type=job_type, job_ids=job_ids)
    return Reject(why, requeue=True)


def _stop_reason(
    session: Session, group: GroupCommit | None, *, claimed_at: float, lease: int
) -> str | None:
    """Why the rest of a batch must be handed back rather than run, if it must."""
    if time.monotonic() - claimed_at > lease / 2:
        return "out_of_lease"  # the next job might run past its lease
    try:
        lost = session.connection().invalidated
    except SQLAlchemyError:  # e.g. a handler's failed ORM flush left it needing a rollback
        lost = True
    if lost or (group is not None and group.broken):
        # The ledger connection dropped (a job's failure was recorded on a new one). The rest
        # go back to the relay rather than run here: SQLAlchemy would reconnect this session
        # without its autocommit, and their outcomes would never commit.
        return "connection_lost"
    return None


def run_batch(
    job_ids: list[str],
    *,
    spec: JobSpec,
    handler: Handler,
    settings: Settings,
    events: AttemptEvents = NO_EVENTS,
) -> dict[str, WorkerOutcome]:
    """Run one batch: claim its jobs in one statement, then run them one after another.

    Every job commits its own outcome, unless its type declares `group_commit`: then the
    batch's outcomes commit together at its end (workers.group_commit). Once half the lease
    has gone, or if the batch's ledger connection dropped, the jobs not yet started are
    released (unclaimed and published again) rather than risk running past their lease or
    recording nothing. If a job's claim was not held to the end (lost lease, forgotten by a
    crash, or a group whose commit failed), or the ledger went away, the message goes back to
    the broker (`Reject(requeue=True)`) for its claim to sort out.
    Each attempt's task events go through `events` (see workers.task_events).
    Returns what happened to each job (for logs and tests).
    """
    policy = settings.policy_for(spec.name)
    claimed_at = time.monotonic()
    ids = [uuid.UUID(i) for i in job_ids]
    with ExitStack() as stack:
        session, jobs = _connect_and_claim(
            stack, ids, job_type=spec.name, settings=settings, lease=policy.lease_timeout
        )
        outcomes = dict.fromkeys(job_ids, WorkerOutcome.DROPPED)
        if jobs:  # one line per batch; each job's own line says how it ended
            log.info("batch_claimed", job_type=spec.name, job_ids=[str(j.id) for j in jobs])
        claimed = {str(j.id) for j in jobs}
        unclaimed = [i for i in job_ids if i not in claimed]
        memo: dict[str, Any] = {}  # shared by the handlers of this batch's jobs
        held = True  # every claim held to its job's end
        grouped = spec.group_commit if policy.group_commit is None else policy.group_commit
        group = GroupCommit(settings) if grouped else None
        if group is not None:
            stack.callback(group.close)
        try:
            for n, job in enumerate(jobs):
                why = _stop_reason(
                    session, group, claimed_at=claimed_at, lease=policy.lease_timeout
                )
                if why:
                    held = _release(jobs[n:], settings=settings, job_type=spec.name, why=why)
                    outcomes.update({str(j.id): WorkerOutcome.RELEASED for j in jobs[n:]})
                    break
                outcomes[str(job.id)] = _run_one(
                    job,
                    session=session,
                    spec=spec,
                    handler=handler,
                    settings=settings,
                    policy=policy,
                    batch=jobs,
                    memo=memo,
                    events=events,
                    group=group,
                )
        except SQLAlchemyError as exc:
            # Not even a failure could be recorded: the ledger went away (a DBAPIError), or a
            # group's transaction died with its connection (PendingRollbackError). Acking the
            # message now could strand a job whose claim a crash forgot: `queued`, published,
            # and no message left to run it.
            time.sleep(DB_DOWN_REQUEUE_DELAY)
            raise _hand_back(job_ids, job_type=spec.name, why="database_unavailable") from exc
        if group is not None:
            # Not recorded: they stay `running` under their claim until it is sorted out.
            lost = group.commit()
            outcomes.update({str(j.id): WorkerOutcome.LEASE_LOST for j in lost})
    if not held or WorkerOutcome.LEASE_LOST in outcomes.values():
        raise _hand_back(job_ids, job_type=spec.name, why="claim_not_held")
    if unclaimed:  # after the batch ran: sorting them out delays no job
        try:
            outcomes.update(drop_unclaimed(unclaimed, job_type=spec.name, settings=settings))
        except SQLAlchemyError as exc:  # the next delivery sorts them out
            raise _hand_back(job_ids, job_type=spec.name, why="database_unavailable") from exc
    return outcomes
