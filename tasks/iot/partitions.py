"""The readings' daily partitions: made ahead (and on demand for a late day), dropped for
retention by detaching them concurrently, so that neither ever blocks ingestion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.iot.settings import IotSettings

PARENT = "iot_readings"
# Taken by whoever creates partitions, so two creators never race on one name.
CREATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('iot_readings partitions'))"
DAYS = text(
    "SELECT c.relname, i.inhdetachpending FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'iot_readings'::regclass"
)


def name_of(day: date) -> str:
    """The partition holding `day` (UTC)."""
    return f"{PARENT}_p{day:%Y%m%d}"


def _day_of(name: str) -> date:
    digits = name.removeprefix(f"{PARENT}_p")
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


@dataclass(frozen=True)
class Attached:
    """The days that have a partition, and those left half-detached by an interrupted drop."""

    days: frozenset[date]
    pending: frozenset[date]


def attached(session: Session) -> Attached:
    """The partitions of the readings table now."""
    rows = session.execute(DAYS).all()
    return Attached(
        days=frozenset(_day_of(r.relname) for r in rows if not r.inhdetachpending),
        pending=frozenset(_day_of(r.relname) for r in rows if r.inhdetachpending),
    )


def ensure(session: Session, days: Iterable[date]) -> list[date]:
    """Create the partitions of `days` that are missing, in the caller's transaction."""
    wanted = set(days)
    if not wanted - attached(session).days:
        return []
    session.execute(text(CREATE_LOCK))
    missing = sorted(wanted - attached(session).days)
    for day in missing:
        lower, upper = day.isoformat(), (day + timedelta(days=1)).isoformat()
        session.execute(
            text(
                f"CREATE TABLE {name_of(day)} PARTITION OF {PARENT} "
                f"FOR VALUES FROM ('{lower} 00:00+00') TO ('{upper} 00:00+00')"
            )
        )
    return missing


def drop_expired(autocommit: Session, *, before: date) -> list[date]:
    """Drop the partitions of days before `before`: each detached concurrently (ingestion
    goes on), then dropped; a detach an earlier run left pending is finished first."""
    state = attached(autocommit)
    for day in sorted(state.pending):
        autocommit.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {name_of(day)} FINALIZE"))
        autocommit.execute(text(f"DROP TABLE {name_of(day)}"))
    dropped = sorted(d for d in state.days if d < before)
    for day in dropped:
        autocommit.execute(
            text(f"ALTER TABLE {PARENT} DETACH PARTITION {name_of(day)} CONCURRENTLY")
        )
        autocommit.execute(text(f"DROP TABLE {name_of(day)}"))
    return sorted(state.pending) + dropped


def upkeep(
    session: Session, autocommit: Session, *, settings: IotSettings, now: datetime
) -> dict[str, list[str]]:
    """Beat's round: partitions from the late window's first day to `partitions_ahead` days
    ahead exist (in `session`), and those past retention are gone (on `autocommit`)."""
    today = now.date()
    first = (now - timedelta(seconds=settings.late_window)).date()
    span = (today - first).days + settings.partitions_ahead + 1
    dropped = drop_expired(autocommit, before=today - timedelta(days=settings.retention_days))
    created = ensure(session, [first + timedelta(days=n) for n in range(span)])
    return {
        "created": [d.isoformat() for d in created],
        "dropped": [d.isoformat() for d in dropped],
    }
