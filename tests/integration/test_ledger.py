"""The ledger's guarded transitions, the reaper and the relay, against the real PostgreSQL."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis
from sqlalchemy import CTE, Insert, delete, insert, literal, select, text, update

from config import Settings
from devstack.processes import isolated, wait_until
from store.db import autocommit, transaction
from store.jobs import LeaseLostError, claim_jobs, mark_succeeded, release_jobs
from store.models import Job, JobAttempt, OutboxMessage
from store.outbox import lock_due, mark_sent
from tasks.enqueue import enqueue
from tasks.maintenance import reap
from tests.support.api import count_rows
from workers.app import create_celery
from workers.relay import Relayed, drain, publish_due, run_forever


@pytest.fixture
def quiet(settings: Settings, clean_ledger: None) -> Settings:
    """The run's settings with a Redis prefix no worker of this run consumes."""
    return isolated(settings)


def new_job(settings: Settings, **options: object) -> uuid.UUID:
    with transaction(settings) as session:
        return enqueue(
            session, "system.echo", {"n": 1}, producer="tests", settings=settings, **options
        ).job_id


def test_a_failed_transaction_leaves_neither_job_nor_outbox_row(
    settings: Settings, clean_ledger: None
) -> None:
    with pytest.raises(RuntimeError), transaction(settings) as session:
        enqueue(session, "system.echo", {}, producer="tests", settings=settings)
        raise RuntimeError("crash before commit")
    assert count_rows(settings, "jobs") == count_rows(settings, "outbox") == 0


def test_only_one_of_two_claims_wins_and_a_job_listed_twice_is_claimed_once(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)
    with transaction(settings) as s:
        [first] = claim_jobs(
            s, [job_id, job_id], job_type="system.echo", worker="a", lease_seconds=30
        )
    with transaction(settings) as s:
        second = claim_jobs(s, [job_id], job_type="system.echo", worker="b", lease_seconds=30)
    assert first.attempt == 1
    assert second == []


def test_a_claim_moves_only_jobs_of_the_type_its_task_runs(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)  # a system.echo job
    with transaction(settings) as s:
        assert claim_jobs(s, [job_id], job_type="system.fail", worker="a", lease_seconds=30) == []
    with transaction(settings) as s:
        job = s.get_one(Job, job_id)
        assert (job.state, job.attempts, job.lease_until) == ("accepted", 0, None)
        assert s.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)).all() == []
    with transaction(settings) as s:  # its own task still claims it
        [own] = claim_jobs(s, [job_id], job_type="system.echo", worker="b", lease_seconds=30)
    assert own.attempt == 1


def test_a_stale_attempt_cannot_record_a_result(settings: Settings, clean_ledger: None) -> None:
    job_id = new_job(settings)
    with transaction(settings) as s:
        [stale] = claim_jobs(s, [job_id], job_type="system.echo", worker="a", lease_seconds=0.05)
    time.sleep(0.1)  # let the lease lapse
    with transaction(settings) as s:
        assert reap(s, settings).retried == 1
    with transaction(settings) as s:
        [current] = claim_jobs(s, [job_id], job_type="system.echo", worker="b", lease_seconds=30)
    assert current.attempt == 2
    with pytest.raises(LeaseLostError), transaction(settings) as s:
        mark_succeeded(s, stale, result={"from": "stale"})
    with transaction(settings) as s:
        mark_succeeded(s, current, result={"from": "current"})
        job = s.get_one(Job, job_id)
        assert (job.state, job.result) == ("succeeded", {"from": "current"})


def test_a_forgotten_claims_finish_cannot_record_over_the_claim_reusing_its_attempt(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)
    with autocommit(settings) as s:
        [forgotten] = claim_jobs(s, [job_id], job_type="system.echo", worker="a", lease_seconds=30)
    with transaction(settings) as s:  # what PostgreSQL holds if a crash lost that claim
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state="queued", attempts=0, lease_until=None, claim_token=None)
        )
        s.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id))
    with autocommit(settings) as s:
        [current] = claim_jobs(s, [job_id], job_type="system.echo", worker="b", lease_seconds=30)
    assert current.attempt == forgotten.attempt == 1
    assert current.claim != forgotten.claim
    with pytest.raises(LeaseLostError), autocommit(settings) as s:
        mark_succeeded(s, forgotten, result={"from": "forgotten"})
    with transaction(settings) as s:  # nor hand back the job the new claim holds
        assert release_jobs(s, [forgotten]) == 0
    with autocommit(settings) as s:
        mark_succeeded(s, current, result={"from": "current"})
    with transaction(settings) as s:
        job = s.get_one(Job, job_id)
        assert (job.state, job.result) == ("succeeded", {"from": "current"})
        attempts = s.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)).all()
        assert [(a.number, a.worker, a.outcome) for a in attempts] == [(1, "b", "succeeded")]


def test_only_the_claim_and_the_mark_sent_commit_without_waiting_for_the_disk(
    quiet: Settings,
) -> None:
    settings = quiet
    show = text("SHOW synchronous_commit")
    job_id = new_job(settings)
    with transaction(settings) as s:  # the claim's transaction (the worker's has no other)
        claim_jobs(s, [job_id], job_type="system.echo", worker="a", lease_seconds=30)
        assert s.execute(show).scalar_one() == "off"
    with transaction(settings) as s:
        assert s.execute(show).scalar_one() == "on"  # SET LOCAL: it ended with that commit
        mark_sent(s, lock_due(s, limit=10))
        assert s.execute(show).scalar_one() == "off"
    with transaction(settings) as s:
        [claimed] = claim_jobs(
            s, [new_job(settings)], job_type="system.echo", worker="a", lease_seconds=30
        )
    with transaction(settings) as s:
        mark_succeeded(s, claimed, result={})
        assert s.execute(show).scalar_one() == "on"  # an outcome waits for its WAL flush


def _note_in_outbox(moved: CTE) -> Insert:
    """A handler's write for the test: an outbox row naming `moved` (the job, if still held)."""
    row = select(moved.c.id, literal("note"), literal("default"), literal(0)).select_from(moved)
    return insert(OutboxMessage).from_select(["job_id", "job_type", "queue", "priority"], row)


def test_a_handler_write_commits_with_success_only_while_the_lease_holds(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)
    with transaction(settings) as s:
        [stale] = claim_jobs(s, [job_id], job_type="system.echo", worker="a", lease_seconds=0.05)
    time.sleep(0.1)
    with transaction(settings) as s:
        assert reap(s, settings).retried == 1
    with transaction(settings) as s:
        [current] = claim_jobs(s, [job_id], job_type="system.echo", worker="b", lease_seconds=30)
    notes = select(OutboxMessage.job_id).where(OutboxMessage.job_type == "note")
    with pytest.raises(LeaseLostError), autocommit(settings) as s:
        mark_succeeded(s, stale, result=None, writes=(_note_in_outbox,))
    with transaction(settings) as s:
        assert s.scalars(notes).all() == []  # the stale attempt wrote nothing
    with autocommit(settings) as s:  # one statement: no transaction around it
        mark_succeeded(s, current, result={"ok": True}, writes=(_note_in_outbox,))
    with transaction(settings) as s:
        assert s.scalars(notes).all() == [job_id]
        assert s.get_one(Job, job_id).state == "succeeded"


def test_the_reaper_quarantines_a_job_that_keeps_losing_its_worker(
    settings: Settings, clean_ledger: None
) -> None:
    job_id = new_job(settings)
    for round_ in range(1, settings.reaper.quarantine_after + 1):
        with transaction(settings) as s:
            assert (
                claim_jobs(
                    s, [job_id], job_type="system.echo", worker=f"w{round_}", lease_seconds=0.01
                )
                != []
            )
        time.sleep(0.05)
        with transaction(settings) as s:
            reap(s, settings)
    with transaction(settings) as s:
        job = s.get_one(Job, job_id)
        outcomes = s.scalars(select(JobAttempt.outcome).where(JobAttempt.job_id == job_id)).all()
    assert job.state == "dead"
    assert job.error is not None
    assert "lost its worker 3 times" in job.error["message"]
    assert outcomes == ["lost", "lost", "lost"]


def test_the_relay_publishes_due_rows_once_and_leaves_future_ones(quiet: Settings) -> None:
    settings = quiet
    due = new_job(settings)
    later = new_job(settings, run_at=datetime.now(UTC) + timedelta(hours=1))
    app = create_celery(settings)
    first = drain(app, settings)
    assert first.sent == 1
    assert first.next_due is not None and 3_500 < first.next_due <= 3_600  # the later one's
    assert drain(app, settings).sent == 0
    with transaction(settings) as s:
        assert s.get_one(Job, due).state == "queued"
        assert s.get_one(Job, later).state == "accepted"
        assert s.scalars(select(OutboxMessage.job_id)).all() == [later]
    client = redis.Redis.from_url(settings.redis.url)
    key = f"{settings.redis.key_prefix}maintenance:9"  # priority 0 → Kombu's list 9
    raw = wait_until(lambda: client.rpop(key), what="the published message")
    message = json.loads(cast(bytes, raw))
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


def test_the_relay_sends_due_jobs_of_one_type_as_batches_of_its_batch_size(
    quiet: Settings,
) -> None:
    settings = quiet
    with transaction(settings) as s:
        ids = [
            enqueue(s, "system.echo", {"n": n}, producer="tests", settings=settings).job_id
            for n in range(120)
        ]
    assert drain(create_celery(settings), settings).sent == 120
    client = redis.Redis.from_url(settings.redis.url)
    key = f"{settings.redis.key_prefix}maintenance:9"
    raw = [json.loads(m) for m in reversed(client.lrange(key, 0, -1))]  # LPUSHed: oldest last
    client.delete(key)
    client.close()
    batches = [json.loads(base64.b64decode(m["body"]))[0][0] for m in raw]
    assert [len(b) for b in batches] == [50, 50, 20]  # system.echo's batch size is 50
    assert [i for b in batches for i in b] == [str(i) for i in ids]
    assert [m["headers"]["id"] for m in raw] == [b[0] for b in batches]


def _messages(settings: Settings) -> list[list[str]]:
    """The job ids of each message waiting on `maintenance` (system.echo's queue), oldest first."""
    client = redis.Redis.from_url(settings.redis.url)
    key = f"{settings.redis.key_prefix}maintenance:9"
    raw = [json.loads(m) for m in reversed(client.lrange(key, 0, -1))]
    client.close()
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in raw]


def test_the_relay_publishes_at_once_while_workers_keep_up(quiet: Settings) -> None:
    job_id = new_job(quiet)
    assert publish_due(create_celery(quiet), quiet, coalesce=True).sent == 1
    assert _messages(quiet) == [[str(job_id)]]


def test_while_workers_are_behind_the_relay_holds_rows_to_share_a_message(
    quiet: Settings,
) -> None:
    app = create_celery(quiet)
    waiting = new_job(quiet)
    assert drain(app, quiet).sent == 1  # a message no worker has taken: the queue is behind
    later = [new_job(quiet) for _ in range(3)]
    assert publish_due(app, quiet, coalesce=True) == Relayed(sent=0, held=3, next_due=0.0)
    with transaction(quiet) as s:  # held, not sent: still the outbox's, unlocked
        assert sorted(s.scalars(select(OutboxMessage.job_id)).all()) == sorted(later)
    assert publish_due(app, quiet) == Relayed(sent=3)
    assert _messages(quiet) == [[str(waiting)], [str(i) for i in later]]


def test_the_running_relay_publishes_held_rows_after_its_linger(quiet: Settings) -> None:
    settings = quiet.model_copy(
        update={"relay": quiet.relay.model_copy(update={"linger": 0.2, "sweep_interval": 60})}
    )
    app = create_celery(settings)
    new_job(settings)
    drain(app, settings)  # the queue is behind from now on
    stop = threading.Event()
    relay = threading.Thread(target=run_forever, args=(app, settings, stop))
    relay.start()
    try:
        wait_until(lambda: count_rows(settings, "outbox") == 0, what="the relay idle")
        with transaction(settings) as s:
            later = [
                enqueue(s, "system.echo", {"n": n}, producer="tests", settings=settings).job_id
                for n in range(2)
            ]
        wait_until(lambda: len(_messages(settings)) == 2, what="the held rows published")
    finally:
        stop.set()
        relay.join()
    assert _messages(settings)[1] == [str(i) for i in later]
    assert count_rows(settings, "outbox") == 0


def test_releasing_a_claimed_job_undoes_the_claim_and_publishes_it_again(quiet: Settings) -> None:
    settings = quiet
    first, second = new_job(settings), new_job(settings)
    app = create_celery(settings)
    drain(app, settings)
    with transaction(settings) as s:
        claimed = claim_jobs(
            s, [first, second], job_type="system.echo", worker="w", lease_seconds=30
        )
    assert [j.id for j in claimed] == [first, second]
    with transaction(settings) as s:
        mark_succeeded(s, claimed[0], result={})
        assert release_jobs(s, claimed) == 1  # the finished one is no longer released
    with transaction(settings) as s:
        job = s.get_one(Job, second)
        assert (job.state, job.attempts, job.started_at, job.lease_until) == (
            "queued",
            0,
            None,
            None,
        )
        assert s.scalars(select(JobAttempt).where(JobAttempt.job_id == second)).all() == []
        assert s.scalars(select(OutboxMessage.job_id)).all() == [second]
    with transaction(settings) as s:  # and it can be claimed afresh as attempt 1
        [again] = claim_jobs(s, [second], job_type="system.echo", worker="w2", lease_seconds=30)
    assert again.attempt == 1
