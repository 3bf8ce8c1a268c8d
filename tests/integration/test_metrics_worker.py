"""A worker on another host serves its own counters: `switchyard worker --metrics-port`."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from config import Settings
from devstack.processes import Process, free_port, settings_env, switchyard, wait_until
from store.db import transaction
from store.models import Job, OutboxMessage
from store.outbox import DueMessage
from tasks.enqueue import enqueue
from workers.app import create_celery
from workers.relay import publish


def samples(url: str) -> dict[tuple[str, str], float]:
    """(metric name, job_type) -> value, from a worker's /metrics."""
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, s.labels.get("job_type", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_the_counters_of_its_pool_children(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    # A Redis prefix of its own: no other worker of this run sees these messages.
    prefix = settings.redis.key_prefix + "mw:"
    own = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"key_prefix": prefix})}
    )
    port = free_port()
    argv = switchyard("worker", "--hostname", "mw@%h", "--metrics-port", str(port))
    worker = Process(argv, env=settings_env(own), log_path=logs_dir / f"metrics-worker-{port}.log")
    try:
        wait_until(lambda: "ready." in worker.output(), timeout=60, what="the worker")
        with transaction(own) as session:
            jobs = [
                session.get_one(
                    Job,
                    enqueue(session, "system.echo", {"n": n}, producer="mw", settings=own).job_id,
                )
                for n in range(3)
            ]
            # Published by hand below, so no relay of this run publishes them elsewhere.
            session.execute(
                delete(OutboxMessage).where(OutboxMessage.job_id.in_([j.id for j in jobs]))
            )
        publish(create_celery(own), [DueMessage(0, j.id, j.type, j.queue, 0) for j in jobs], own)
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(
            lambda: samples(url).get(("switchyard_jobs_succeeded_total", "system.echo")) == 3,
            timeout=30,
            what="the worker's exporter to count 3 successes",
        )
        assert samples(url)[("switchyard_job_wait_seconds_count", "system.echo")] == 3
    finally:
        worker.stop()
