"""The outbox relay: publishes due outbox rows to Redis as batches of jobs, woken by NOTIFY.

While a queue's workers keep up, a row is published the moment it is seen (latency). While
they are behind — messages wait in Redis that no worker has taken — its rows are held for
`relay.linger` seconds first, so that the rows arriving meanwhile travel in the same messages
and the workers pay one claim, one delivery and one commit for many (throughput)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from celery import Celery
from kombu.exceptions import BatchPublishError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from config import Settings
from logs import get_logger
from store.db import connect_listen, transaction
from store.outbox import NOTIFY_CHANNEL, DueMessage, lock_due, mark_sent, seconds_until_next_due
from tasks.registry import domains

log = get_logger("switchyard.relay")
# A pipeline that breaks mid-publish (Redis went away once the pooled connection existed)
# arrives as BatchPublishError: an outage like any other. The rows stay unsent (their
# transaction rolls back) and go out again once Redis is back — at worst as duplicates.
BROKER_ERRORS = (
    KombuOperationalError, BatchPublishError, RedisError, ConnectionError, OSError
)  # fmt: skip
MAX_BACKOFF = 5.0


def kombu_priority(priority: int) -> int:
    """Our priority (9 most urgent) as Kombu's Redis priority (0 served first)."""
    return 9 - priority


def group_batches(
    messages: list[DueMessage], batch_size: Callable[[str], int]
) -> list[list[DueMessage]]:
    """Group rows into batches: jobs of one type, queue and priority, at most
    `batch_size(job_type)` each, in the rows' order. A job that has lost a worker before
    travels alone, so a job that kills its worker takes no other job down with it again."""
    batches: list[list[DueMessage]] = []
    open_: dict[tuple[str, str, int], list[DueMessage]] = {}
    for m in messages:
        if m.lost_count:
            batches.append([m])
            continue
        key = (m.job_type, m.queue, m.priority)
        group = open_.get(key)
        if group is None or len(group) >= batch_size(m.job_type):
            group = open_[key] = []
            batches.append(group)
        group.append(m)
    return batches


def publish(app: Celery, messages: list[DueMessage], settings: Settings) -> None:
    """Send the rows as batches (one broker message each) through a single Redis pipeline.
    A batch's task id is its first job's id."""
    registry = domains(settings)
    batches = group_batches(messages, lambda name: registry.batch_size(settings, name))
    with app.producer_or_acquire() as producer, producer.batch(max_size=len(batches)):
        for batch in batches:
            first = batch[0]
            app.send_task(
                first.job_type,
                args=[[str(m.job_id) for m in batch]],
                task_id=str(first.job_id),
                queue=first.queue,
                priority=kombu_priority(first.priority),
                producer=producer,
            )


def backlogged(app: Celery, queues: set[str]) -> set[str]:
    """The queues holding messages in Redis that no worker has taken yet."""
    with app.producer_or_acquire() as producer:
        return {q for q in queues if producer.channel.queue_declare(queue=q).message_count}


@dataclass(frozen=True)
class Relayed:
    """What one pass did: rows sent, rows held back for a fuller batch, and the seconds until
    the earliest row it left becomes due (None: it left none)."""

    sent: int
    held: int = 0
    next_due: float | None = None


def publish_due(app: Celery, settings: Settings, *, coalesce: bool = False) -> Relayed:
    """Publish up to `relay.batch_size` due rows. With `coalesce`, the rows of a queue whose
    workers are behind (messages waiting in Redis) are held, unless they fill a batch: they
    wait no less for being sent now, and sent a moment later they share messages."""
    limit = settings.relay.batch_size
    with transaction(settings) as session:
        messages = lock_due(session, limit=limit)
        held: list[DueMessage] = []
        if coalesce and 0 < len(messages) < limit:
            behind = backlogged(app, {m.queue for m in messages})
            held = [m for m in messages if m.queue in behind]
            messages = [m for m in messages if m.queue not in behind]
        if messages:
            # A crash after publishing and before the commit re-sends these rows:
            # a duplicate message, never a lost job.
            publish(app, messages, settings)
            next_due = mark_sent(session, messages)
        else:
            next_due = seconds_until_next_due(session)
    return Relayed(len(messages), len(held), next_due)


def drain(app: Celery, settings: Settings) -> Relayed:
    """Publish due rows until none is left: the total sent, and when the next row is due."""
    sent = 0
    while True:
        done = publish_due(app, settings)
        sent += done.sent
        if done.sent < settings.relay.batch_size:
            return Relayed(sent, next_due=done.next_due)


def _wait(settings: Settings, due_in: float | None) -> float:
    """How long to sleep: until the next due row, or the sweep at the latest."""
    sweep = settings.relay.sweep_interval
    return sweep if due_in is None else min(sweep, due_in)


def _wait_for_notify(conn: psycopg.Connection, seconds: float, stop: threading.Event) -> None:
    """Block until a NOTIFY arrives, `seconds` pass, or `stop` is set (checked every second)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if any(True for _ in conn.notifies(timeout=min(left, 1.0), stop_after=1)):
            return


def run_forever(app: Celery, settings: Settings, stop: threading.Event) -> None:
    """Relay until `stop` is set: drain, then sleep until NOTIFY, the next due row or a sweep."""
    backoff = 0.2
    conn: psycopg.Connection | None = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = connect_listen(settings, channel=NOTIFY_CHANNEL)
            linger = settings.relay.linger
            done = publish_due(app, settings, coalesce=linger > 0)
            sent, due_in = done.sent, done.next_due
            if done.held or sent == settings.relay.batch_size:
                if done.held:  # the workers are behind: let the held rows gather company
                    stop.wait(linger)
                rest = drain(app, settings)
                sent, due_in = sent + rest.sent, rest.next_due
            if sent:
                log.info("relay_published", count=sent, held=done.held)
            backoff = 0.2
            _wait_for_notify(conn, _wait(settings, due_in), stop)
        except (*BROKER_ERRORS, DBAPIError, psycopg.Error) as exc:
            log.warning("relay_unavailable", error=str(exc), retry_in=backoff)
            if conn is not None and not conn.closed and isinstance(exc, psycopg.Error | DBAPIError):
                conn.close()
            stop.wait(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)
    if conn is not None:
        conn.close()
