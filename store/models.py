"""Ledger tables: jobs, their attempts, the outbox, API keys and beat fires."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.ids import uuid7
from store.states import AttemptOutcome, JobState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[DeclarativeBase]) -> Table:
    """A mapped class's Core table (typed: `__table__` is only a FromClause to checkers)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


_STATE_LIST = ", ".join(f"'{s.value}'" for s in JobState)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Job(Base):
    """One unit of work, from acceptance to its terminal state."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"state IN ({_STATE_LIST})", name="state"),
        CheckConstraint("priority BETWEEN 0 AND 9", name="priority"),
        Index("ix_jobs_state_run_at", "state", "run_at"),
        Index("ix_jobs_producer_id", "producer", "id"),
        Index("ix_jobs_type_id", "type", "id"),
        Index(
            "ix_jobs_running_lease",
            "lease_until",
            postgresql_where=text(f"state = '{JobState.RUNNING}'"),
        ),
        Index(
            "uq_jobs_producer_idempotency_key",
            "producer",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    type: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=JobState.ACCEPTED.value)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger)
    lost_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The current (or last) claim's own token: an outcome is recorded only by the claim that
    # holds it (migration 0005), since a claim PostgreSQL forgot lets the next reuse `attempts`.
    claim_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Who holds the current (or last) claim, since when: the open attempt, whose `job_attempts`
    # row is written once, when it ends (by the finish or the reaper).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    producer: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A signed completion webhook goes here when the job ends (enqueued by a trigger, 0002).
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_secret: Mapped[str | None] = mapped_column(Text)  # sealed, never plain


class JobAttempt(Base):
    """One ended try at a job: who ran it, when, and how it ended (the one running is on the
    job row: `claimed_by`, `claimed_at`)."""

    __tablename__ = "job_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(SmallInteger)
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16), default=AttemptOutcome.RUNNING)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class OutboxMessage(Base):
    """A job waiting to be published to its queue; deleted once sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_available_at_id", "available_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    job_type: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    available_at: Mapped[datetime] = _now()
    created_at: Mapped[datetime] = _now()


class ApiKey(Base):
    """A producer's credential; only a hash of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScheduleFire(Base):
    """One fire of a beat schedule entry; the key makes each slot fire once."""

    __tablename__ = "schedule_fires"

    schedule: Mapped[str] = mapped_column(String(100), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fired_at: Mapped[datetime] = _now()
    fired_by: Mapped[str] = mapped_column(String(255))


# The ledger's own tables (tests empty them between cases).
LEDGER_TABLES = ("outbox", "job_attempts", "jobs", "api_keys", "schedule_fires")
