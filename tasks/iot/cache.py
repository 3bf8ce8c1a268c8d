"""A Redis cache of latest values and aggregate answers, kept coherent with the store.

The store is the truth. Every cached answer is filed under a generation of what it depends
on: a device (its latest values) or a device's metric (its aggregates). A store transaction
that stores new readings bumps the generations of its device and metrics *after it commits*,
so the answers filed under the old generations are never read again. A reader reads the
generation before it reads the store, so an answer computed from a snapshot older than a
commit is filed under a generation that commit has already left behind (or is about to).

Redis being down only costs speed: reads fall through to the store, writes are skipped. An
invalidation lost that way is bounded by the entries' lifetime (`iot.cache_ttl`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeVar

import redis
from pydantic import TypeAdapter
from sqlalchemy import event
from sqlalchemy.orm import Session

from config import Settings
from tasks.iot.settings import IotSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
_PENDING, _HOOKED = "iot_cache_pending", "iot_cache_hooked"


@cache
def client(url: str) -> redis.Redis:
    """One Redis client per URL and process, quick to give up."""
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _key(settings: Settings, *parts: Any) -> str:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]
    return f"{settings.redis.key_prefix}iot:cache:{parts[0]}:{digest}"


def _generation(settings: Settings, scope: tuple[str, ...]) -> str:
    return _key(settings, "gen", *scope)


def read_through(
    settings: Settings,
    scope: tuple[str, ...],
    question: Any,
    adapter: TypeAdapter[T],
    compute: Callable[[], T],
) -> T:
    """The cached answer to `question` about `scope` (a device, or a device and metric), else
    `compute()`'s, which is cached for the next reader."""
    redis_client = client(settings.redis.url)
    try:
        generation = int(redis_client.get(_generation(settings, scope)) or 0)
        entry = _key(settings, "answer", *scope, generation, question)
        hit = redis_client.get(entry)
    except redis.RedisError:
        return compute()
    if hit is not None:
        return adapter.validate_json(hit)
    answer = compute()
    with contextlib.suppress(redis.RedisError):  # the next reader computes it again
        redis_client.set(
            entry, adapter.dump_json(answer), ex=settings.section(IotSettings).cache_ttl
        )
    return answer


def invalidate(settings: Settings, device: str, metrics: Iterable[str]) -> None:
    """Leave behind every cached answer about the device and about each of `metrics`."""
    pipe = client(settings.redis.url).pipeline(transaction=False)
    for scope in [(device,), *((device, m) for m in metrics)]:
        pipe.incr(_generation(settings, scope))
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning(
            "iot cache: invalidation of %s lost (%s); stale for at most cache_ttl", device, exc
        )


def _flush(settings: Settings) -> Callable[[Session], None]:
    def after_commit(session: Session) -> None:
        pending: dict[str, set[str]] = session.info.pop(_PENDING, {})
        for device, metrics in pending.items():
            invalidate(settings, device, metrics)

    return after_commit


def invalidate_on_commit(
    session: Session, settings: Settings, device: str, metrics: Iterable[str]
) -> None:
    """Invalidate the device's and the metrics' answers once the session's transaction
    commits. A rollback keeps them pending for the session's next commit: invalidating more
    than needed only costs a miss."""
    if _HOOKED not in session.info:
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _flush(settings))
    session.info.setdefault(_PENDING, {}).setdefault(device, set()).update(metrics)
