"""Where a job stands, how an attempt ended, what a worker did with a job: the one home of each.

No SQLAlchemy here, so that a client library may import it.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job stands; the last three are terminal."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED})


class AttemptOutcome(StrEnum):
    """How one attempt ended, as `job_attempts.outcome` records it (`running`: the attempt in
    progress, shown from its job row until its own row is written as it ends)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    LOST = "lost"  # the reaper found its lease expired: the worker vanished


class WorkerOutcome(StrEnum):
    """What a worker did with one job of a batch (its task's result; the metrics' labels)."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    LEASE_LOST = "lease_lost"  # someone else moved the job meanwhile: nothing recorded
    RELEASED = "released"  # handed back unstarted (out of lease, or the connection dropped)
    DROPPED = "dropped"  # not claimed: a duplicate, early or finished
    POISON = "poison"  # not claimed: unknown, or of another type than the task that got it

    @property
    def ran(self) -> bool:
        """True if the handler ran to an outcome the ledger recorded (its run time counts)."""
        return self in _RAN


class PoisonReason(StrEnum):
    """Why a worker discarded a message (or one job id of it) as poison: the metric's label."""

    NOT_JSON = "not_json"  # the broker message itself is not JSON
    MALFORMED_ENVELOPE = "malformed_envelope"  # JSON, but not a message Kombu can deliver
    UNDECODABLE_BODY = "undecodable_body"  # a body its content type cannot decode
    UNKNOWN_TASK = "unknown_task"  # no task of that name (or no task name at all)
    INVALID_TASK = "invalid_task"  # a task message Celery refuses (bad headers, content type)
    MALFORMED_ARGS = "malformed_args"  # a job task's arguments are not one list of job ids
    UNKNOWN_JOB = "unknown_job"  # a job id the ledger does not hold
    WRONG_JOB_TYPE = "wrong_job_type"  # a job of another type than the receiving task runs


_RAN = frozenset({WorkerOutcome.SUCCEEDED, WorkerOutcome.RETRYING, WorkerOutcome.DEAD})
