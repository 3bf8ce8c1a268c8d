"""Receiving and storing telemetry batches: a session in, rows out; no Celery, no FastAPI."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError, PermanentError
from store.ids import uuid7
from tasks.enqueue import draft_job, enqueue_many
from tasks.iot import alerts, cache, ingest_counts, partitions
from tasks.iot.formats import Parser
from tasks.iot.ingest_counts import Outcomes
from tasks.iot.models import Batch, Device, Profile
from tasks.iot.parsing import parser_for
from tasks.iot.rules import Rules
from tasks.iot.schemas import INGEST
from tasks.iot.settings import IotSettings
from tasks.iot.store import store
from tasks.iot.validation import IN_FUTURE, check


@dataclass(frozen=True)
class Received:
    """A batch as it arrived: whose, in which format, its bytes, when."""

    device_id: str
    content_type: str
    body: bytes
    received_at: datetime


def receive(
    session: Session,
    *,
    device_id: str,
    content_type: str,
    body: bytes,
    received_at: datetime,
    settings: Settings,
) -> Batch:
    """Record a batch and the job that stores it, in the caller's transaction."""
    arrived = Received(device_id, content_type, body, received_at)
    return receive_many(session, [arrived], settings=settings)[0]


def receive_many(
    session: Session, arrived: Sequence[Received], *, settings: Settings
) -> list[Batch]:
    """Record batches and the jobs that store them, in the caller's transaction, in order, in
    two round trips however many there are."""
    ids = [uuid7() for _ in arrived]
    drafts = [
        draft_job(INGEST.name, {"batch_id": str(i)}, producer="iot", settings=settings) for i in ids
    ]
    batches = []
    for batch_id, batch, outcome in zip(ids, arrived, enqueue_many(session, drafts), strict=True):
        if isinstance(outcome, Exception):  # no idempotency key, so nothing refuses a draft
            raise outcome
        batches.append(Batch(
            id=batch_id, device_id=batch.device_id, content_type=batch.content_type,
            body=batch.body, received_at=batch.received_at, status="received",
            job_id=outcome.job_id, refusals=[],
        ))  # fmt: skip
    session.add_all(batches)
    session.flush()
    return batches


def summary(batch: Batch) -> dict[str, Any]:
    """What became of a batch, as its job's result and its status page show it."""
    return {
        "batch_id": str(batch.id),
        "status": batch.status,
        "readings": batch.readings,
        "stored": batch.stored,
        "duplicates": batch.duplicates,
        "conflicts": batch.conflicts,
        "clamped": batch.clamped,
        "refused": len(batch.refusals),
    }


def refuse_whole(batch: Batch, exc: InvalidFieldError, *, now: datetime) -> dict[str, Any]:
    """Mark a batch that is not a batch at all refused, naming why; nothing of it is stored."""
    batch.status = "refused"
    batch.body = None
    batch.refusals = [{"index": None, "code": exc.code, "reason": str(exc), "field": exc.field}]
    batch.stored_at = now
    return summary(batch)


def ingest(
    session: Session,
    batch_id: uuid.UUID,
    *,
    extra_parsers: Mapping[str, Parser],
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Parse, validate and store one batch; a batch done already is left as it is."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        raise PermanentError(f"no batch {batch_id}")
    if batch.status != "received":
        return summary(batch)
    device = session.get_one(Device, batch.device_id)
    rules = Rules.of(session.get_one(Profile, device.profile_id), settings.section(IotSettings))
    parse = parser_for(batch.content_type, extra=extra_parsers)
    try:
        parsed = parse(batch.body or b"", device=device.id, received_at=batch.received_at)
    except InvalidFieldError as exc:  # not a batch at all: refused whole, nothing stored
        ingest_counts.add(session, profile=device.profile_id, batch_id=batch.id,
                          outcomes=Outcomes(refused=1))  # fmt: skip
        return refuse_whole(batch, exc, now=now)
    checked = check(parsed.readings, device=device.id, rules=rules, received_at=batch.received_at)
    partitions.ensure(session, {r.ts.astimezone(UTC).date() for _, r in checked.accepted})
    counts = store(session, checked.accepted, batch_id=batch.id, received_at=batch.received_at)
    if counts.new:
        cache.invalidate_on_commit(session, settings, device.id, {m for m, _, _ in counts.new})
    alerts.evaluate(
        session, device=device.id, profile=device.profile_id, stored=counts.new,
        received_at=batch.received_at, settings=settings,
    )  # fmt: skip
    refusals = sorted([*parsed.refusals, *checked.refusals], key=lambda r: r.index)
    outcomes = Outcomes(
        accepted=counts.stored,
        duplicate=counts.duplicates,
        conflicting=counts.conflicts,
        late=counts.late,
        future=checked.clamped + sum(1 for r in refusals if r.code == IN_FUTURE),
        refused=len(refusals),
    )
    ingest_counts.add(session, profile=device.profile_id, batch_id=batch.id, outcomes=outcomes)
    batch.status = "stored"
    batch.body = None  # the readings hold it now; refusals say what was not kept
    batch.readings = len(parsed.readings) + len(parsed.refusals)
    batch.stored = counts.stored
    batch.duplicates = counts.duplicates
    batch.conflicts = counts.conflicts
    batch.clamped = checked.clamped
    batch.refusals = [asdict(r) for r in refusals]
    batch.stored_at = now
    return summary(batch)
