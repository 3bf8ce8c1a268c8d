"""Deleting finished work once it is past its retention period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, Result, delete, func
from sqlalchemy.orm import Session

from store.models import Job, ScheduleFire, table_of
from store.states import TERMINAL_STATES


def purge_finished_jobs(session: Session, *, older_than_days: int, limit: int = 5_000) -> int:
    """Delete up to `limit` terminal jobs (and their attempts) finished before the cut-off."""
    cutoff = func.now() - timedelta(days=older_than_days)
    doomed = (
        table_of(Job)
        .select()
        .with_only_columns(Job.id)
        .where(Job.state.in_(list(TERMINAL_STATES)), Job.finished_at < cutoff)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return _deleted(session.execute(delete(Job).where(Job.id.in_(doomed))))


def purge_schedule_fires(session: Session, *, older_than_days: int) -> int:
    """Delete beat fire records older than the cut-off."""
    cutoff = func.now() - timedelta(days=older_than_days)
    return _deleted(session.execute(delete(ScheduleFire).where(ScheduleFire.fired_at < cutoff)))


def _deleted(result: Result[Any]) -> int:
    """How many rows a DELETE removed (a DML result is a CursorResult)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
