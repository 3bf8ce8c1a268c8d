"""Read-only figures for operators: ledger counts, ready work per queue, relay lag, queue depth."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import PRIORITY_SEP, PRIORITY_STEPS, Settings
from store.models import Job, OutboxMessage
from store.states import JobState
from store.transitions import ALLOWED_FROM, Transition

# Kombu's Redis transport keeps one list per priority step: `queue`, then `queue:1` … `queue:9`.


@dataclass(frozen=True)
class ReadyWork:
    """Jobs that are due and not running in one queue, and how long the oldest has waited."""

    count: int
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class RelayLag:
    """Outbox rows that are due but not yet published."""

    backlog: int
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class QueueReport:
    """One queue as an operator sees it."""

    name: str
    depth: int | None
    ready: int
    oldest_ready_seconds: float | None


def known_queues(settings: Settings, *, declared: Iterable[str]) -> list[str]:
    """The declared queues (the core's and the domains') and those policies route to."""
    names = set(declared)
    names.update(p.queue for p in settings.job_policies.values() if p.queue)
    return sorted(names)


def state_counts(session: Session) -> dict[str, int]:
    """How many jobs the ledger holds in each state (every state listed, zeros included)."""
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    counts = {state.value: 0 for state in JobState}
    counts.update({state: int(n) for state, n in rows})
    return counts


def ready_by_queue(session: Session) -> dict[str, ReadyWork]:
    """Per queue: due jobs waiting for a worker and the age of the oldest (since it became due)."""
    age = func.extract("epoch", func.now() - func.min(Job.run_at))
    rows = session.execute(
        select(Job.queue, func.count(), age)
        # Ready: what a claim would take now.
        .where(Job.state.in_(ALLOWED_FROM[Transition.CLAIM]), Job.run_at <= func.now())
        .group_by(Job.queue)
    ).all()
    return {q: ReadyWork(int(n), None if a is None else float(a)) for q, n, a in rows}


def oldest_ready_age(session: Session, queue: str) -> float | None:
    """Seconds the oldest due job of `queue` has waited for a worker (None: nothing waits)."""
    age = session.execute(
        select(func.extract("epoch", func.now() - func.min(Job.run_at))).where(
            Job.queue == queue,
            Job.state.in_(ALLOWED_FROM[Transition.CLAIM]),
            Job.run_at <= func.now(),
        )
    ).scalar_one()
    return None if age is None else max(0.0, float(age))


def relay_lag(session: Session) -> RelayLag:
    """Due outbox rows and the age of the oldest: how far the relay is behind."""
    count, age = session.execute(
        select(
            func.count(),
            func.extract("epoch", func.now() - func.min(OutboxMessage.available_at)),
        ).where(OutboxMessage.available_at <= func.now())
    ).one()
    return RelayLag(int(count), None if age is None else max(0.0, float(age)))


def broker_depths(client: redis.Redis, queues: Iterable[str], *, prefix: str) -> dict[str, int]:
    """Messages waiting in Redis per queue, summed over its priority lists."""
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for name in names:
        for step in PRIORITY_STEPS:
            pipe.llen(f"{prefix}{name}{PRIORITY_SEP}{step}" if step else f"{prefix}{name}")
    lengths = iter(pipe.execute())
    return {name: sum(int(next(lengths)) for _ in PRIORITY_STEPS) for name in names}


def queue_report(
    session: Session, settings: Settings, *, queues: Iterable[str]
) -> list[QueueReport]:
    """Depth (Redis; None if unreachable) and ready work (ledger) for each queue."""
    names = sorted(set(queues))
    ready = ready_by_queue(session)
    names = sorted(set(names) | set(ready))
    client = redis.Redis.from_url(settings.redis.url, socket_timeout=2, socket_connect_timeout=2)
    try:
        depths: dict[str, int | None] = dict(
            broker_depths(client, names, prefix=settings.redis.key_prefix)
        )
    except redis.RedisError:
        depths = dict.fromkeys(names)
    finally:
        client.close()
    empty = ReadyWork(0, None)
    return [
        QueueReport(
            name=n,
            depth=depths.get(n),
            ready=ready.get(n, empty).count,
            oldest_ready_seconds=ready.get(n, empty).oldest_age_seconds,
        )
        for n in names
    ]
