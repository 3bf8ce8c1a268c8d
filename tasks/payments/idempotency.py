"""The payments API's `Idempotency-Key`, with Stripe's semantics, scoped per producer.

A request with a key first claims it: one `INSERT … ON CONFLICT` at the start of the request's
transaction. A concurrent twin blocks on the primary key until the first commits, then finds
the key taken; since the answer is stored in the same transaction (`remember`, just before the
commit), a taken key always has one to replay. A refused request rolls back and leaves its key
free. A key older than `KEY_TTL` is taken over as if new (and swept by `forget_expired`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, null, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from errors import InvalidFieldError
from tasks.enqueue import IdempotencyKeyReusedError
from tasks.payments.models import IdempotencyKey
from tasks.web.strict import InvalidTextError

HEADER = "Idempotency-Key"
KEY_MAX = 255
KEY_TTL = timedelta(hours=24)
SWEEP_BATCH = 1_000


@dataclass(frozen=True)
class Stored:
    """The answer an earlier request with the key got."""

    status: int
    body: Any


def check_key(key: str) -> None:
    """Raise InvalidFieldError naming the header unless the key can be stored."""
    if not key:
        raise InvalidFieldError("String should have at least 1 character", field=HEADER)
    if len(key) > KEY_MAX:
        raise InvalidFieldError(f"String should have at most {KEY_MAX} characters", field=HEADER)
    if "\x00" in key:
        raise InvalidTextError("NUL characters cannot be stored", field=HEADER)


def fingerprint(method: str, path: str, body: Any) -> str:
    """A stable hash of what was asked (method, path, body), to tell a replay from a reuse."""
    canonical = json.dumps(
        {"method": method, "path": path, "body": body}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _expired() -> Any:
    """Whether a key row is past KEY_TTL (by the database's clock)."""
    return IdempotencyKey.created_at < func.now() - KEY_TTL


def claim(session: Session, *, producer: str, key: str, request_hash: str) -> Stored | None:
    """Take the key for this request (None: go ahead), or the answer an earlier request with
    it got; IdempotencyKeyReusedError if that request was another."""
    anew = {
        "request_hash": request_hash,
        "status": null(),
        "body": null(),
        "created_at": func.now(),
    }
    taken = session.execute(
        insert(IdempotencyKey)
        .values(producer=producer, key=key, request_hash=request_hash)
        .on_conflict_do_update(
            index_elements=[IdempotencyKey.producer, IdempotencyKey.key],
            set_=anew,
            where=_expired(),
        )
        .returning(IdempotencyKey.producer)
    ).first()
    if taken is not None:
        return None
    earlier = session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.status, IdempotencyKey.body).where(
            IdempotencyKey.producer == producer, IdempotencyKey.key == key
        )
    ).one()
    if earlier.request_hash != request_hash:
        raise IdempotencyKeyReusedError(f"{HEADER} {key!r} was used with a different request")
    return Stored(earlier.status, earlier.body)


def remember(session: Session, *, producer: str, key: str, status: int, body: Any) -> None:
    """Store the answer of the request that claimed the key (before its transaction commits)."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.producer == producer, IdempotencyKey.key == key)
        .values(status=status, body=body)
    )


def forget_expired(session: Session, *, limit: int = SWEEP_BATCH) -> int:
    """Delete up to `limit` keys older than KEY_TTL; how many went."""
    oldest = (
        select(IdempotencyKey.producer, IdempotencyKey.key)
        .where(_expired())
        .order_by(IdempotencyKey.created_at)
        .limit(limit)
    )
    done = session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.producer, IdempotencyKey.key).in_(oldest)
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]
