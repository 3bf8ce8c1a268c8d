"""`enqueue`: the one way a job is born, over HTTP or not."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config import Settings, get_settings
from store.errors import SwitchyardError
from store.ids import uuid7
from store.models import Job, JobState
from store.outbox import add_outbox
from tasks.notifications.callbacks import CallbackError, callback_columns
from tasks.registry import get_spec


class InvalidJobError(SwitchyardError):
    """The request names a field whose value cannot be accepted."""

    code = "invalid_field"

    def __init__(self, message: str, *, field: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.field = field
        self.errors = errors or [{"field": field, "message": message}]


class IdempotencyKeyReusedError(SwitchyardError):
    """The Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Enqueued:
    """The job, and whether this call created it (False: an idempotent replay)."""

    job: Job
    created: bool


def request_fingerprint(job_type: str, payload: Mapping[str, Any], **options: Any) -> str:
    """A stable hash of what was asked, to tell an idempotent replay from a key reuse."""
    body = {"type": job_type, "payload": payload, **options}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_payload(job_type: str, payload: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """The payload as the job type's schema accepts it, or InvalidJobError naming the field."""
    spec = get_spec(job_type)
    try:
        model = spec.payload.model_validate(
            payload.model_dump() if isinstance(payload, BaseModel) else payload
        )
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(["payload", *map(str, e["loc"])]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        first = errors[0]
        raise InvalidJobError(first["message"], field=first["field"], errors=errors) from exc
    return model.model_dump(mode="json")


def enqueue(
    session: Session,
    job_type: str,
    payload: Mapping[str, Any] | BaseModel,
    *,
    producer: str,
    priority: int = 0,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    callback_secret: str | None = None,
    settings: Settings | None = None,
) -> Enqueued:
    """Insert the job and its outbox row in the caller's transaction; replays honour the key."""
    settings = settings or get_settings()
    spec = get_spec(job_type)
    clean = validate_payload(job_type, payload)
    policy = settings.policy_for(job_type)
    queue = policy.queue or spec.queue
    attempts = max_attempts or policy.max_attempts
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = request_fingerprint(
            job_type,
            clean,
            priority=priority,
            run_at=run_at,
            max_attempts=max_attempts,
            callback_url=callback_url,
        )
    try:
        callback = callback_columns(callback_url, callback_secret, settings=settings)
    except CallbackError as exc:
        raise InvalidJobError(str(exc), field=exc.field) from exc
    values: dict[str, Any] = {
        "id": uuid7(),
        "type": job_type,
        "queue": queue,
        "state": JobState.ACCEPTED,
        "payload": clean,
        "priority": priority,
        "max_attempts": attempts,
        "producer": producer,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "run_at": run_at if run_at is not None else func.now(),
        **callback,
    }
    stmt = insert(Job).values(**values)
    if idempotency_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["producer", "idempotency_key"],
            index_where=Job.idempotency_key.is_not(None),
        )
    job = session.scalars(stmt.returning(Job)).one_or_none()
    if job is None:
        existing = session.scalars(
            select(Job).where(Job.producer == producer, Job.idempotency_key == idempotency_key)
        ).one()
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idempotency_key!r} was used with a different request"
            )
        return Enqueued(job=existing, created=False)
    add_outbox(
        session, job.id, job_type=job_type, queue=queue, priority=priority, available_at=run_at
    )
    return Enqueued(job=job, created=True)
