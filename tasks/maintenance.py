"""Beat work on the ledger: the reaper, stale-message republishing and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from config import Settings
from logs import get_logger
from store.jobs import ReapedJob, reap_expired_leases
from store.models import Job
from store.outbox import add_outbox
from store.retention import purge_finished_jobs, purge_schedule_fires
from store.states import JobState

log = get_logger("switchyard.maintenance")


@dataclass(frozen=True)
class ReapReport:
    """What one reaper pass did."""

    retried: int
    quarantined: int
    republished: int
    lost: tuple[ReapedJob, ...] = ()  # the jobs whose attempt lost its worker, as reaped

    def counts(self) -> dict[str, int]:
        """The pass's numbers."""
        return {
            "retried": self.retried,
            "quarantined": self.quarantined,
            "republished": self.republished,
        }


def republish_stale_queued(session: Session, *, older_than_seconds: float) -> int:
    """Publish again jobs `queued` for too long: their message may have been lost with Redis."""
    rows = session.execute(
        update(Job)
        .where(
            Job.state == JobState.QUEUED,
            Job.updated_at < func.now() - timedelta(seconds=older_than_seconds),
        )
        .values(updated_at=func.now())
        .returning(Job.id, Job.type, Job.queue, Job.priority)
    ).all()
    add_outbox(session, rows)
    return len(rows)


def reap(session: Session, settings: Settings) -> ReapReport:
    """Recover jobs whose worker vanished and messages that never arrived."""
    reaped = reap_expired_leases(session, quarantine_after=settings.reaper.quarantine_after)
    for job in reaped:
        log.warning(
            "job_lease_expired",
            job_id=str(job.id),
            job_type=job.type,
            attempt=job.attempt,
            new_state=job.state,
        )
    republished = republish_stale_queued(
        session, older_than_seconds=settings.reaper.republish_queued_after
    )
    quarantined = sum(1 for j in reaped if j.state == JobState.DEAD)
    return ReapReport(len(reaped) - quarantined, quarantined, republished, lost=tuple(reaped))


def apply_retention(session: Session, settings: Settings) -> dict[str, int]:
    """Delete finished jobs and old beat fires past their retention."""
    return {
        "jobs": purge_finished_jobs(session, older_than_days=settings.retention.finished_jobs_days),
        "schedule_fires": purge_schedule_fires(
            session, older_than_days=settings.retention.schedule_fires_days
        ),
    }
