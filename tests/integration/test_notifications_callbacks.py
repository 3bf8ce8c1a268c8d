"""Completion callbacks are enqueued in the transaction of every terminal transition."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from config import Settings
from store.db import transaction
from store.job_actions import cancel_job, replay_job
from store.jobs import (
    claim_jobs,
    mark_dead,
    mark_retrying,
    mark_succeeded,
    reap_expired_leases,
)
from tasks.enqueue import enqueue
from tasks.notifications.models import Notification
from tasks.notifications.secrets import unseal
from tests.support.notifications import clean_notifications

SECRET = "whsec_" + "C" * 32
URL = "https://hooks.example.com/callback"


@pytest.fixture
def ledger(settings: Settings, clean_ledger: None) -> Iterator[Settings]:
    yield settings
    clean_notifications(settings)


def new_job(settings: Settings, *, callback: bool = True, job_type: str = "system.echo") -> Any:
    extra = {"callback_url": URL, "callback_secret": SECRET} if callback else {}
    with transaction(settings) as session:
        return enqueue(session, job_type, {}, producer="svc", settings=settings, **extra).job_id


def claim(settings: Settings, job_id: uuid.UUID) -> Any:
    with transaction(settings) as session:
        session.execute(text("UPDATE jobs SET state = 'queued' WHERE id = :id"), {"id": job_id})
        [claimed] = claim_jobs(
            session, [job_id], job_type="system.echo", worker="test", lease_seconds=30
        )
        return claimed


def callbacks(settings: Settings, job_id: uuid.UUID) -> list[Notification]:
    with transaction(settings) as session:
        return list(
            session.scalars(select(Notification).where(Notification.source_job_id == job_id))
        )


def outbox_for(settings: Settings, job_id: uuid.UUID) -> int:
    with transaction(settings) as session:
        return int(
            session.execute(
                text("SELECT count(*) FROM outbox WHERE job_id = :id"), {"id": job_id}
            ).scalar_one()
        )


def test_success_enqueues_one_signed_callback_with_its_outbox_row(ledger: Settings) -> None:
    job_id = new_job(ledger)
    job = claim(ledger, job_id)
    with transaction(ledger) as session:
        mark_succeeded(session, job, result={"ok": True})
    (cb,) = callbacks(ledger, job_id)
    assert (cb.kind, cb.channel, cb.recipient, cb.producer) == ("callback", "webhook", URL, "svc")
    assert unseal(cb.callback_secret or "", settings=ledger) == SECRET
    event = json.loads(cb.body_text or "")
    assert event["type"] == "job.succeeded"
    assert event["data"]["result"] == {"ok": True}
    assert event["data"]["job_id"] == str(job_id)
    assert outbox_for(ledger, cb.job_id) == 1


def test_a_retry_is_not_terminal_and_a_job_without_callback_gets_none(ledger: Settings) -> None:
    job_id = new_job(ledger)
    job = claim(ledger, job_id)
    with transaction(ledger) as session:
        mark_retrying(session, job, error={"type": "x", "message": "later"}, delay_seconds=60)
    assert callbacks(ledger, job_id) == []
    plain = new_job(ledger, callback=False)
    with transaction(ledger) as session:
        mark_dead(session, claim(ledger, plain), error={"type": "x", "message": "no"})
    assert callbacks(ledger, plain) == []


def test_dead_and_cancelled_each_get_exactly_one(ledger: Settings) -> None:
    dead = new_job(ledger)
    with transaction(ledger) as session:
        mark_dead(
            session, claim(ledger, dead), error={"type": "X", "message": "boom", "traceback": "t"}
        )
    cancelled = new_job(ledger)
    with transaction(ledger) as session:
        assert cancel_job(session, cancelled)
        assert not cancel_job(session, cancelled)
    (d,) = callbacks(ledger, dead)
    (c,) = callbacks(ledger, cancelled)
    assert json.loads(d.body_text or "")["data"]["error"] == {"type": "X", "message": "boom"}
    assert json.loads(c.body_text or "")["type"] == "job.cancelled"


def test_the_reapers_dead_branch_enqueues_the_callback(ledger: Settings) -> None:
    job_id = new_job(ledger)
    claim(ledger, job_id)
    with transaction(ledger) as session:
        session.execute(
            text("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = :id"),
            {"id": job_id},
        )
        reaped = reap_expired_leases(session, quarantine_after=1)
    assert [r.state for r in reaped] == ["dead"]
    (cb,) = callbacks(ledger, job_id)
    assert json.loads(cb.body_text or "")["data"]["error"]["type"] == "worker_lost"


def test_a_failed_callback_insert_rolls_back_the_transition(ledger: Settings) -> None:
    """Same transaction: no terminal state is recorded without its callback, and vice versa."""
    job_id = new_job(ledger)
    job = claim(ledger, job_id)
    with pytest.raises(DBAPIError), transaction(ledger) as session:
        session.execute(text("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE NOWAIT"))
        session.execute(text("SET LOCAL lock_timeout = '50ms'"))
        with transaction(ledger) as other:
            other.execute(text("SET LOCAL lock_timeout = '50ms'"))
            mark_succeeded(other, job, result=None)
    with transaction(ledger) as session:
        state = session.execute(
            text("SELECT state FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert state == "running"
    assert callbacks(ledger, job_id) == []


def test_a_replayed_job_gets_a_callback_for_each_terminal_state(ledger: Settings) -> None:
    job_id = new_job(ledger)
    with transaction(ledger) as session:
        mark_dead(session, claim(ledger, job_id), error={"type": "X", "message": "boom"})
    with transaction(ledger) as session:  # replayed, then cancelled before it runs again
        assert replay_job(session, job_id, extra_attempts=3)
        assert cancel_job(session, job_id)
    kinds = sorted(json.loads(n.body_text or "")["type"] for n in callbacks(ledger, job_id))
    assert kinds == ["job.cancelled", "job.dead"]
