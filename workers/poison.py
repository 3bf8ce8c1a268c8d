"""Poison messages: what no worker can run — unreadable, unknown, misrouted, forged — is logged,
counted (`switchyard_poison_messages_total{reason}`) and discarded; it never stops a worker and
never moves a job it does not own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from config import Settings
from logs import get_logger
from store.db import autocommit
from store.metrics import attempt_finished, poison_discarded
from store.queries import types_of
from store.states import PoisonReason, WorkerOutcome

log = get_logger("switchyard.poison")


def discard(reason: PoisonReason, *, count: int = 1, **detail: Any) -> None:
    """Log and count a poison message (or `count` job ids of one) that is being dropped."""
    log.warning("poison_message_discarded", reason=reason.value, count=count, **detail)
    poison_discarded(reason.value, count=count)


def parse_job_ids(args: Sequence[Any], kwargs: dict[str, Any]) -> list[str] | None:
    """A job task's arguments — exactly one list of job ids — as canonical id strings; None
    when they are anything else."""
    if kwargs or len(args) != 1 or not isinstance(args[0], list) or not args[0]:
        return None
    try:
        return [str(uuid.UUID(i)) for i in args[0]]
    except (TypeError, ValueError, AttributeError):  # not a string, or not a UUID
        return None


def sort_unclaimed(
    session: Session, job_ids: Sequence[str], *, job_type: str
) -> dict[str, PoisonReason | None]:
    """Why each job id a claim left out was not ours: unknown, of another type (poison), or
    None — a duplicate, early or finished job (harmless, dropped)."""
    known = types_of(session, [uuid.UUID(i) for i in job_ids])
    reasons: dict[str, PoisonReason | None] = {}
    for job_id in job_ids:
        found = known.get(uuid.UUID(job_id))
        if found is None:
            reasons[job_id] = PoisonReason.UNKNOWN_JOB
        elif found != job_type:
            reasons[job_id] = PoisonReason.WRONG_JOB_TYPE
        else:
            reasons[job_id] = None
    return reasons


def drop_unclaimed(
    job_ids: list[str], *, job_type: str, settings: Settings
) -> dict[str, WorkerOutcome]:
    """Log and count the job ids a claim left out: duplicates are dropped, unknown or
    misrouted ones discarded as poison. (On a connection of its own: the batch's may have
    dropped, or wait for a rollback after a handler's failure.)"""
    with autocommit(settings) as session:
        reasons = sort_unclaimed(session, job_ids, job_type=job_type)
    dropped = [i for i, reason in reasons.items() if reason is None]
    if dropped:
        log.info("duplicate_jobs_dropped", job_ids=dropped, job_type=job_type)
    for _ in dropped:
        attempt_finished(job_type, outcome=WorkerOutcome.DROPPED, seconds=None)
    for job_id, reason in reasons.items():
        if reason is not None:
            discard(reason, job_id=job_id, job_type=job_type)
    return {i: WorkerOutcome.POISON if r else WorkerOutcome.DROPPED for i, r in reasons.items()}
