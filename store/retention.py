"""Deleting finished work once it is past its retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from store.models import TERMINAL_STATES, Job, ScheduleFire


def purge_finished_jobs(session: Session, *, older_than_days: int, limit: int = 5_000) -> int:
    """Delete up to `limit` terminal jobs (and their attempts) finished before the cut-off."""
    cutoff = func.now() - timedelta(days=older_than_days)
    doomed = (
        Job.__table__.select()
        .with_only_columns(Job.id)
        .where(Job.state.in_(list(TERMINAL_STATES)), Job.finished_at < cutoff)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return session.execute(delete(Job).where(Job.id.in_(doomed))).rowcount


def purge_schedule_fires(session: Session, *, older_than_days: int) -> int:
    """Delete beat fire records older than the cut-off."""
    cutoff = func.now() - timedelta(days=older_than_days)
    return session.execute(delete(ScheduleFire).where(ScheduleFire.fired_at < cutoff)).rowcount
