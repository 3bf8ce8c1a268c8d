"""The completion-callback trigger PostgreSQL runs is the SQL file rendered with the code's names:
the installed text is the rendered text, and what it inserts carries the code's values."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from config import Settings
from store.db import transaction
from store.models import Job, OutboxMessage
from store.outbox import NOTIFY_CHANNEL
from store.states import TERMINAL_STATES, JobState
from tasks.enqueue import enqueue
from tasks.notifications.completion_trigger import (
    CALLBACK_CHANNEL,
    CALLBACK_KIND,
    FUNCTION,
    TRIGGER,
    render,
)
from tasks.notifications.models import Notification
from tasks.notifications.retries import CALLBACK_ATTEMPTS
from tasks.notifications.schemas import DELIVER, DeliverPayload
from tests.support.notifications import clean_notifications

SECRET = "whsec_" + "D" * 32


@pytest.fixture
def ledger(settings: Settings, clean_ledger: None) -> Iterator[Settings]:
    yield settings
    clean_notifications(settings)


def running_job_with_callback(settings: Settings) -> uuid.UUID:
    """A job with a callback, moved straight to `running` (no trigger fires on the way)."""
    with transaction(settings) as session:
        job_id = enqueue(
            session,
            "system.echo",
            {},
            producer="svc",
            settings=settings,
            callback_url="https://hooks.example.com/done",
            callback_secret=SECRET,
        ).job_id
        session.execute(
            text("UPDATE jobs SET state = 'running', attempts = 1 WHERE id = :id"), {"id": job_id}
        )
    return job_id


def move(settings: Settings, job_id: uuid.UUID, state: str) -> None:
    with transaction(settings) as session:
        session.execute(
            text("UPDATE jobs SET state = :s WHERE id = :id"), {"s": state, "id": job_id}
        )


def callbacks_of(settings: Settings, job_id: uuid.UUID) -> list[Any]:
    with transaction(settings) as session:
        return list(
            session.execute(
                select(Notification, Job, OutboxMessage)
                .join(Job, Job.id == Notification.job_id)
                .join(OutboxMessage, OutboxMessage.job_id == Job.id)
                .where(Notification.source_job_id == job_id)
            ).all()
        )


def test_the_installed_function_is_the_rendered_file(settings: Settings) -> None:
    rendered = render()
    body = re.search(r"AS \$\$(.*?)\$\$;", rendered, re.DOTALL)
    assert body is not None
    with transaction(settings) as session:
        installed = session.execute(
            text("SELECT prosrc FROM pg_proc WHERE proname = :name"), {"name": FUNCTION}
        ).scalar_one()
        trigger = session.execute(
            text("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = :name"),
            {"name": TRIGGER},
        ).scalar_one()
    assert installed == body.group(1)
    assert set(re.findall(r"'(\w+)'::character varying", trigger)) == set(TERMINAL_STATES)
    assert trigger.endswith(f"EXECUTE FUNCTION {FUNCTION}()")


@pytest.mark.parametrize("state", list(JobState))
def test_a_callback_is_enqueued_exactly_for_the_codes_terminal_states(
    ledger: Settings, state: JobState
) -> None:
    job_id = running_job_with_callback(ledger)
    move(ledger, job_id, state)
    found = callbacks_of(ledger, job_id)
    assert len(found) == (1 if state in TERMINAL_STATES else 0)


def test_the_callback_job_has_the_codes_type_queue_budget_and_wakes_the_relay(
    ledger: Settings, database_url: str
) -> None:
    job_id = running_job_with_callback(ledger)
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        move(ledger, job_id, JobState.SUCCEEDED)
        woken = [n.channel for n in listener.notifies(timeout=5, stop_after=1)]
    assert woken == [NOTIFY_CHANNEL]
    ((notification, job, outbox),) = callbacks_of(ledger, job_id)
    assert (job.type, job.queue, job.state) == (DELIVER.name, DELIVER.queue, JobState.ACCEPTED)
    assert (job.max_attempts, job.attempts) == (CALLBACK_ATTEMPTS, 0)
    assert DeliverPayload.model_validate(job.payload).notification_id == notification.id
    assert (notification.kind, notification.channel) == (CALLBACK_KIND, CALLBACK_CHANNEL)
    assert (outbox.job_type, outbox.queue) == (DELIVER.name, DELIVER.queue)
