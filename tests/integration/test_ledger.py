"""The ledger's guarded transitions, the reaper and the relay, against the real PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from config import Settings
from producers.enqueue import enqueue
from store.db import transaction
from store.jobs import LeaseLostError, claim_job, mark_succeeded
from store.models import Job, JobAttempt, OutboxMessage
from tasks.maintenance import reap
from tests.api_support import count_rows
from tests.support import isolated, wait_until
from workers.app import create_celery
from workers.relay import drain


@pytest.fixture
def quiet(settings: Settings, clean_ledger: None) -> Settings:
    """The run's settings with a Redis prefix no worker of this run consumes."""
    return isolated(settings)


def new_job(settings: Settings, **options: object) -> uuid.UUID:
    with transaction(settings) as session:
        return enqueue(
            session, "system.echo", {"n": 1}, producer="tests", settings=settings, **options
        ).job.id  # type: ignore[arg-type]


def test_a_failed_transaction_leaves_neither_job_nor_outbox_row(
    settings: Settings, clean_ledger: None
) -> None:
    with pytest.raises(RuntimeError), transaction(settings) as session:
        enqueue(session, "system.echo", {}, producer="tests", settings=settings)
        raise RuntimeError("crash before commit")
    assert count_rows(settings, "jobs") == count_rows(settings, "outbox") == 0


def test_only_one_of_two_claims_wins(settings: Settings, clean_ledger: None) -> None:
    job_id = new_job(settings)
    with transaction(settings) as s:
        first = claim_job(s, job_id, worker="a", lease_seconds=30)
    with transaction(settings) as s:
        second = claim_job(s, job_id, worker="b", lease_seconds=30)
    assert first is not None and first.attempt == 1
    assert second is None


def test_a_stale_attempt_cannot_record_a_result(settings: Settings, clean_ledger: None) -> None:
    job_id = new_job(settings)
    with transaction(settings) as s:
        stale = claim_job(s, job_id, worker="a", lease_seconds=0.05)
    assert stale is not None
    time.sleep(0.1)  # let the lease lapse
    with transaction(settings) as s:
        assert reap(s, settings).retried == 1
    with transaction(settings) as s:
        current = claim_job(s, job_id, worker="b", lease_seconds=30)
    assert current is not None and current.attempt == 2
    with pytest.raises(LeaseLostError), transaction(settings) as s:
        mark_succeeded(s, stale, result={"from": "stale"})
    with transaction(settings) as s:
        mark_succeeded(s, current, result={"from": "current"})
        job = s.get_one(Job, job_id)
        assert (job.state, job.result) == ("succeeded", {"from": "current"})


def test_the_reaper_quarantines_a_job_that_keeps_losing_its_worker(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)
    for round_ in range(1, settings.reaper.quarantine_after + 1):
        with transaction(settings) as s:
            assert claim_job(s, job_id, worker=f"w{round_}", lease_seconds=0.01) is not None
        time.sleep(0.05)
        with transaction(settings) as s:
            reap(s, settings)
    with transaction(settings) as s:
        job = s.get_one(Job, job_id)
        outcomes = s.scalars(select(JobAttempt.outcome).where(JobAttempt.job_id == job_id)).all()
    assert job.state == "dead"
    assert "lost its worker 3 times" in job.error["message"]
    assert outcomes == ["lost", "lost", "lost"]


def test_the_relay_publishes_due_rows_once_and_leaves_future_ones(quiet: Settings) -> None:
    settings = quiet
    due = new_job(settings)
    later = new_job(settings, run_at=datetime.now(UTC) + timedelta(hours=1))
    app = create_celery(settings)
    assert drain(app, settings) == 1
    assert drain(app, settings) == 0
    with transaction(settings) as s:
        assert s.get_one(Job, due).state == "queued"
        assert s.get_one(Job, later).state == "accepted"
        assert s.scalars(select(OutboxMessage.job_id)).all() == [later]
    client = redis.Redis.from_url(settings.redis.url)
    key = f"{settings.redis.key_prefix}maintenance:9"  # priority 0 → Kombu's list 9
    raw = wait_until(lambda: client.rpop(key), what="the published message")
    message = json.loads(raw)
    assert message["headers"]["task"] == "system.echo"
    assert message["headers"]["id"] == str(due)
    assert message["headers"]["eta"] is None
    client.close()


def test_republishes_queued_jobs_whose_message_was_lost(quiet: Settings) -> None:
    settings = quiet
    job_id = new_job(settings)
    app = create_celery(settings)
    drain(app, settings)
    fast = settings.model_copy(
        update={"reaper": settings.reaper.model_copy(update={"republish_queued_after": 0.01})}
    )
    time.sleep(0.05)
    with transaction(fast) as s:
        assert reap(s, fast).republished == 1
    with transaction(settings) as s:
        assert s.scalars(select(OutboxMessage.job_id)).all() == [job_id]
