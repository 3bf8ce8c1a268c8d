"""`enqueue`: the one way a job is born, over HTTP or not."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from config import Settings, get_settings
from errors import InvalidFieldError, SwitchyardError
from store.bulk import (
    KeyedJobs,
    insert_job_rows,
    insert_job_rows_async,
    jobs_by_key,
    jobs_by_key_async,
)
from store.ids import uuid7
from store.states import JobState
from tasks.registry import domains


class IdempotencyKeyReusedError(SwitchyardError):
    """The Idempotency-Key was already used with a different request."""

    status, code, field = 422, "idempotency_key_reused", "Idempotency-Key"


@dataclass(frozen=True)
class Enqueued:
    """The job's id, and whether this call created it (False: an idempotent replay). The job
    is not read back: a caller that needs more of it reads it, no one else pays the SELECT."""

    job_id: uuid.UUID
    created: bool


def request_fingerprint(job_type: str, payload: Mapping[str, Any], **options: Any) -> str:
    """A stable hash of what was asked, to tell an idempotent replay from a key reuse."""
    body = {"type": job_type, "payload": payload, **options}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_payload(
    job_type: str, payload: Mapping[str, Any] | BaseModel, *, settings: Settings | None = None
) -> dict[str, Any]:
    """The payload as the job type's schema accepts it, or InvalidFieldError naming the field."""
    spec = domains(settings).spec(job_type)
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
        raise InvalidFieldError(first["message"], field=first["field"], errors=errors) from exc
    clean = model.model_dump(mode="json")
    _refuse_nul(clean, "payload")
    return clean


def _refuse_nul(value: Any, field: str) -> None:
    """PostgreSQL stores no NUL character in text or JSONB: refuse it here, naming the field."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidFieldError("NUL characters (\\u0000) cannot be stored", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, f"{field}.{key}")
            _refuse_nul(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{field}.{index}")


def _callback_columns(url: str | None, secret: str | None, *, settings: Settings) -> dict[str, str]:
    """The job's callback columns, made by the domain that delivers callbacks (which raises
    InvalidFieldError naming `callback_url` or `callback_secret`)."""
    if url is None and secret is None:
        return {}
    seal = domains(settings).callback_columns
    if seal is None:
        raise InvalidFieldError(
            "no loaded domain delivers completion callbacks", field="callback_url"
        )
    return seal(url, secret, settings=settings)


@dataclass(frozen=True)
class JobDraft:
    """A validated job, ready to insert: the `jobs` row's values and its fingerprint."""

    values: dict[str, Any]

    @property
    def producer(self) -> str:
        """Who submits it."""
        return str(self.values["producer"])

    def for_producer(self, producer: str) -> JobDraft:
        """The same job submitted by `producer`."""
        return JobDraft({**self.values, "producer": producer})


@dataclass(frozen=True)
class Inserted:
    """The outcome of one draft: its job id, and False if an earlier request created it."""

    job_id: uuid.UUID
    created: bool


# What became of one draft: inserted (or an idempotent replay), or why not.
Outcome = Inserted | Exception


def draft_job(
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
) -> JobDraft:
    """Validate a job request and apply its type's policy; no I/O, so it fails fast with a 422."""
    settings = settings or get_settings()
    spec = domains(settings).spec(job_type)
    clean = validate_payload(job_type, payload, settings=settings)
    policy = settings.policy_for(job_type)
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
    for name, text in (("callback_url", callback_url), ("idempotency_key", idempotency_key)):
        _refuse_nul(text, name)
    callback = _callback_columns(callback_url, callback_secret, settings=settings)
    return JobDraft(
        {
            "id": uuid7(),
            "type": job_type,
            "queue": policy.queue or spec.queue,
            "state": JobState.ACCEPTED.value,
            "payload": clean,
            "priority": priority,
            "max_attempts": max_attempts or policy.max_attempts,
            "producer": producer,
            "idempotency_key": idempotency_key,
            "request_hash": fingerprint,
            "run_at": run_at,
            "attempts": 0,
            "lost_count": 0,
            **callback,
        }
    )


def enqueue_many(session: Session, drafts: Sequence[JobDraft]) -> list[Outcome]:
    """Insert jobs (made by `draft_job`) and their outbox rows in the caller's transaction, in
    one round trip (two when an Idempotency-Key was seen before), however many there are.

    Each draft gets its own outcome, in order: `Inserted` (created, or an idempotent replay of
    its key, also within the batch) or the error that refused it (a key reused with another
    request); a refused draft does not stop its batch-mates.
    """
    created = insert_job_rows(session, [d.values for d in drafts])
    keys = _replayed_keys(drafts, created)
    # In a transaction a failed lookup aborts the insert too: it raises, for the caller to
    # roll back, rather than report jobs that will never commit.
    return _outcomes(drafts, created, jobs_by_key(session, keys) if keys else {})


async def enqueue_many_async(
    conn: AsyncConnection[Any], drafts: Sequence[JobDraft]
) -> list[Outcome]:
    """`enqueue_many` on an autocommit psycopg connection, where the insert commits on its own."""
    created = await insert_job_rows_async(conn, [d.values for d in drafts])
    keys = _replayed_keys(drafts, created)
    try:
        earlier = await jobs_by_key_async(conn, keys) if keys else {}
    except Exception as exc:
        # The new jobs are committed and say so: only the replays learn of the failure.
        return _outcomes(drafts, created, {}, failed=exc)
    return _outcomes(drafts, created, earlier)


def _replayed_keys(drafts: Sequence[JobDraft], created: set[uuid.UUID]) -> set[tuple[str, str]]:
    """(producer, Idempotency-Key) of the drafts not inserted: an earlier job holds the key."""
    return {
        (d.producer, d.values["idempotency_key"]) for d in drafts if d.values["id"] not in created
    }


def _outcomes(
    drafts: Sequence[JobDraft],
    created: set[uuid.UUID],
    earlier: KeyedJobs,
    *,
    failed: Exception | None = None,
) -> list[Outcome]:
    """Each draft's outcome, given the ids inserted and the jobs holding the other drafts'
    keys (or why those could not be read: `failed`)."""
    outcomes: list[Outcome] = []
    for draft in drafts:
        if draft.values["id"] in created:
            outcomes.append(Inserted(draft.values["id"], created=True))
            continue
        if failed is not None:
            outcomes.append(failed)
            continue
        key = draft.values["idempotency_key"]
        job_id, fingerprint = earlier[(draft.producer, key)]
        if fingerprint != draft.values["request_hash"]:
            outcomes.append(
                IdempotencyKeyReusedError(
                    f"Idempotency-Key {key!r} was used with a different request"
                )
            )
        else:
            outcomes.append(Inserted(job_id, created=False))
    return outcomes


def enqueue(
    session: Session,
    job_type: str,
    payload: Mapping[str, Any] | BaseModel,
    *,
    producer: str,
    settings: Settings | None = None,
    **options: Any,
) -> Enqueued:
    """Insert one job and its outbox row in the caller's transaction; replays honour the key.

    `options` are those of `draft_job`: priority, run_at, max_attempts, idempotency_key,
    callback_url, callback_secret.
    """
    draft = draft_job(job_type, payload, producer=producer, settings=settings, **options)
    (outcome,) = enqueue_many(session, [draft])
    if isinstance(outcome, Exception):
        raise outcome
    return Enqueued(job_id=outcome.job_id, created=outcome.created)
