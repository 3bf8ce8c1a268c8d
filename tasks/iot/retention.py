"""Retention of each roll-up tier and of finished batches, by beat: small deletes on an
autocommit connection, each one statement that skips rows anyone holds, so neither the fold
nor ingestion ever waits for it (raw readings go by whole partitions: `partitions.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CursorResult, TextClause, text
from sqlalchemy.orm import Session

from tasks.iot.settings import IotSettings

PURGE_ROLLUPS = text("""
DELETE FROM iot_rollups WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM iot_rollups WHERE tier = :tier AND bucket < :before
  LIMIT :limit FOR UPDATE SKIP LOCKED))
""")
# A batch still waiting to be stored is kept, however old.
PURGE_BATCHES = text("""
DELETE FROM iot_batches WHERE id = ANY(ARRAY(
  SELECT id FROM iot_batches WHERE status <> 'received' AND received_at < :before
  LIMIT :limit FOR UPDATE SKIP LOCKED))
""")


def _purge(autocommit: Session, statement: TextClause, *, limit: int, **params: object) -> int:
    removed = 0
    while True:
        result = autocommit.execute(statement, {**params, "limit": limit})
        assert isinstance(result, CursorResult)
        removed += result.rowcount
        if result.rowcount < limit:
            return removed


def kept(settings: IotSettings, *, now: datetime) -> dict[str, datetime]:
    """Each tier's oldest bucket that no retention run up to `now` can have deleted."""
    return {
        "1m": now - timedelta(days=settings.rollup_1m_days),
        "1h": now - timedelta(days=settings.rollup_1h_days),
        "1d": now - timedelta(days=settings.rollup_1d_days),
    }


def upkeep(
    autocommit: Session, *, settings: IotSettings, now: datetime, limit: int = 5_000
) -> dict[str, int]:
    """Delete each tier's buckets and the finished batches past their retention."""
    removed = {
        tier: _purge(autocommit, PURGE_ROLLUPS, limit=limit, tier=tier, before=before)
        for tier, before in kept(settings, now=now).items()
    }
    removed["batches"] = _purge(
        autocommit, PURGE_BATCHES, limit=limit, before=now - timedelta(days=settings.batch_days)
    )
    return removed
