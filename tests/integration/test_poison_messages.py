"""Poison in a worker's queue — not JSON, not an envelope, an unknown task, bad arguments, an
unknown job, another type's job — is logged, counted and discarded: the worker keeps going."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, select

from config import MAINTENANCE_QUEUE, Settings
from devstack.processes import Process, free_port, isolated, settings_env, switchyard, wait_until
from store.db import transaction
from store.models import Job, OutboxMessage
from tasks.enqueue import enqueue
from workers.app import create_celery
from workers.relay import drain


def poison_counts(url: str) -> dict[str, float]:
    """reason -> switchyard_poison_messages_total, from a worker's /metrics."""
    text = httpx.get(url, timeout=5).text
    return {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "switchyard_poison_messages_total"
    }


def new_job(settings: Settings, job_type: str, payload: dict[str, Any]) -> uuid.UUID:
    """A due job with no outbox row: only the messages this test sends name it."""
    with transaction(settings) as session:
        job_id = enqueue(session, job_type, payload, producer="poison", settings=settings).job_id
        session.execute(delete(OutboxMessage).where(OutboxMessage.job_id == job_id))
        return job_id


def job_row(settings: Settings, job_id: uuid.UUID) -> tuple[str, int]:
    """The job's state and attempts."""
    with transaction(settings) as session:
        row = session.execute(select(Job.state, Job.attempts).where(Job.id == job_id)).one()
        return row.state, row.attempts


@pytest.fixture
def own(settings: Settings, clean_ledger: None) -> Settings:
    """Settings with a Redis key prefix of their own: only this test's worker reads it."""
    return isolated(settings)


@pytest.fixture
def broker(own: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own.redis.url)
    yield client
    keys = list(client.scan_iter(match=f"{own.redis.key_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_poison_is_counted_and_discarded_and_the_worker_keeps_consuming(
    own: Settings, broker: redis.Redis, logs_dir: Path
) -> None:
    app = create_celery(own)
    queue_key = f"{own.redis.key_prefix}{MAINTENANCE_QUEUE}"
    # A real envelope to spoil: a system.echo message, taken back out of Redis unread.
    app.send_task("system.echo", args=[[str(uuid.uuid4())]], queue=MAINTENANCE_QUEUE)
    envelope = json.loads(broker.rpop(queue_key))  # type: ignore[arg-type]
    envelope["body"] = base64.b64encode(b"{not json").decode()
    fail_id = new_job(own, "system.fail", {"times": 5, "mode": "permanent"})

    port = free_port()
    argv = switchyard("worker", "--hostname", f"poison-{port}@%h", "--metrics-port", str(port))
    worker = Process(argv, env=settings_env(own), log_path=logs_dir / f"poison-{port}.log")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until(lambda: "ready." in worker.output(), timeout=60, what="the worker")
        for raw in (b"\xff\x00 not json at all", b"[1, 2, 3]", b'{"body": "x"}'):
            broker.lpush(queue_key, raw)
        broker.lpush(queue_key, json.dumps(envelope))
        app.send_task("no.such.task", args=[[str(uuid.uuid4())]], queue=MAINTENANCE_QUEUE)
        app.send_task("system.echo", args=["one", "two"], queue=MAINTENANCE_QUEUE)
        app.send_task("system.echo", args=[["not-a-uuid"]], queue=MAINTENANCE_QUEUE)
        app.send_task("system.echo", args=[[str(uuid.uuid4())]], queue=MAINTENANCE_QUEUE)
        # Another type's job: the echo task must not run it (it would "succeed" a failing job).
        app.send_task("system.echo", args=[[str(fail_id)]], queue=MAINTENANCE_QUEUE)
        expected = {
            "not_json": 1.0,
            "malformed_envelope": 2.0,
            "undecodable_body": 1.0,
            "unknown_task": 1.0,
            "malformed_args": 2.0,
            "unknown_job": 1.0,
            "wrong_job_type": 1.0,
        }
        wait_until(
            lambda: worker.popen.poll() is None and poison_counts(url) == expected,
            timeout=30,
            what=f"the poison counts {expected}",
        )
        assert job_row(own, fail_id) == ("accepted", 0)  # untouched, left to its own task

        good = new_job(own, "system.echo", {"still": "consuming"})
        with transaction(own) as session:  # published the ordinary way, with the fail job
            for job_id in (good, fail_id):
                row = session.get_one(Job, job_id)
                session.add(
                    OutboxMessage(job_id=job_id, job_type=row.type, queue=row.queue, priority=0)
                )
        drain(app, own)
        wait_until(lambda: job_row(own, good)[0] == "succeeded", what="the good job")
        wait_until(lambda: job_row(own, fail_id) == ("dead", 1), what="system.fail to die")
        assert worker.popen.poll() is None, worker.output()
        assert "poison_message_discarded" in worker.output()
    finally:
        worker.stop()
