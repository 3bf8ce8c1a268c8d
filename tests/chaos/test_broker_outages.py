"""Redis taken away under running processes: the relay and the workers stay up and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings
from devstack.processes import Process, wait_until
from tests.support.api import job_state, submit_all
from tests.support.own_redis import OwnRedis
from tests.support.stack import start_process, start_worker

pytestmark = pytest.mark.chaos
ECHO = ("system.echo", {"survives": "broker outages"})


def alive(proc: Process) -> bool:
    """True while the process runs; fails at once if it has exited."""
    code = proc.popen.poll()
    assert code is None, f"exited with {code}:\n{proc.output()[-3000:]}"
    return True


def _take_redis_away(own_redis: OwnRedis, worker: Process) -> None:
    """Kill the worker's Redis and wait until the worker (still running) has noticed."""
    own_redis.kill()
    wait_until(
        lambda: alive(worker) and "Connection to broker lost" in worker.output(),
        timeout=30,
        what="the worker to notice the outage",
    )


def _bring_redis_back(own: Settings, own_redis: OwnRedis, worker: Process) -> None:
    """Submit a job, restart Redis, and wait until the same worker has run the job."""
    (after,) = submit_all(own, [ECHO])
    own_redis.start()
    wait_until(
        lambda: alive(worker) and job_state(own, after) == "succeeded",
        timeout=60,
        what="the same worker to run a job once Redis is back",
    )


def test_the_relay_survives_redis_going_away_after_it_published_and_resumes(
    settings: Settings, logs_dir: Path, own_redis: OwnRedis, clean_ledger: None
) -> None:
    own = own_redis.settings_for(settings)
    relay = start_process(own, logs_dir, "relay")
    try:
        (before,) = submit_all(own, [ECHO])
        wait_until(lambda: job_state(own, before) == "queued", timeout=30, what="a first publish")
        own_redis.kill()
        # The pooled connection breaks inside the publish pipeline: kombu's BatchPublishError.
        (during,) = submit_all(own, [ECHO])
        wait_until(
            lambda: alive(relay) and relay.output().count("relay_unavailable") >= 2,
            timeout=30,
            what="the relay to retry its publish",
        )
        alive(relay)
        assert job_state(own, during) == "accepted"
        own_redis.start()
        wait_until(
            lambda: alive(relay) and job_state(own, during) == "queued",
            timeout=30,
            what="the relay to publish again once Redis is back",
        )
        alive(relay)
    finally:
        relay.stop()


def test_a_worker_survives_redis_going_away_and_consumes_again_when_it_is_back(
    settings: Settings, logs_dir: Path, own_redis: OwnRedis, clean_ledger: None
) -> None:
    own = own_redis.settings_for(settings)
    worker = start_worker(own, logs_dir, name="worker-redis-drop", concurrency=1)
    relay = start_process(own, logs_dir, "relay")
    try:
        (before,) = submit_all(own, [ECHO])
        wait_until(lambda: job_state(own, before) == "succeeded", timeout=30, what="a first job")
        _take_redis_away(own_redis, worker)
        _bring_redis_back(own, own_redis, worker)
    finally:
        relay.stop()
        worker.stop()


def test_a_worker_survives_acking_a_job_that_finished_after_redis_went_away(
    settings: Settings, logs_dir: Path, own_redis: OwnRedis, clean_ledger: None
) -> None:
    """The consumer closes its connection when Redis drops; the job running meanwhile runs on
    to its end and is then acked on a channel of that closed connection (Kombu raised
    AttributeError there, and the worker stopped; so did its restore of unacked messages at
    close). The ack is lost, not the job: its outcome is in the ledger already."""
    own = own_redis.settings_for(settings)
    worker = start_worker(own, logs_dir, name="worker-late-ack", concurrency=1)
    relay = start_process(own, logs_dir, "relay")
    try:
        (slow,) = submit_all(own, [("system.sleep", {"seconds": 1.5})])
        wait_until(lambda: job_state(own, slow) == "running", timeout=30, what="the job to start")
        _take_redis_away(own_redis, worker)
        wait_until(
            lambda: alive(worker) and job_state(own, slow) == "succeeded",
            timeout=30,
            what="the running job to end",
        )
        _bring_redis_back(own, own_redis, worker)
        assert "Couldn't ack" in worker.output()  # the late ack was tried, and survived
        assert job_state(own, slow) == "succeeded"
    finally:
        relay.stop()
        worker.stop()
