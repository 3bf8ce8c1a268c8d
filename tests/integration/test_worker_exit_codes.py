"""A worker's exit status is Celery's: 0 for a shutdown on request, non-zero when it could not
go on — what `restart: on-failure` and supervisors act on (it used to be 0 whatever happened)."""

from __future__ import annotations

import signal
from pathlib import Path

import redis

from config import MAINTENANCE_QUEUE, Settings
from devstack.processes import isolated, wait_until
from tests.support.stack import start_worker


def test_a_worker_stopped_on_request_exits_0(settings: Settings, logs_dir: Path) -> None:
    worker = start_worker(isolated(settings), logs_dir, name="exit-sigterm", concurrency=1)
    try:
        worker.popen.send_signal(signal.SIGTERM)  # to the worker only, as a supervisor would
        assert worker.popen.wait(30) == 0, worker.output()[-3000:]
    finally:
        worker.stop()


def test_a_worker_that_cannot_go_on_exits_non_zero(settings: Settings, logs_dir: Path) -> None:
    own = isolated(settings)
    worker = start_worker(own, logs_dir, name="exit-unrecoverable", concurrency=1)
    client = redis.Redis.from_url(own.redis.url)
    queue_key = f"{own.redis.key_prefix}{MAINTENANCE_QUEUE}"
    try:
        # A queue key that is no list: every BRPOP fails with WRONGTYPE, an error Celery does
        # not retry ("Unrecoverable error"). Nothing the worker can do about it.
        client.set(queue_key, "not a list")
        wait_until(lambda: worker.popen.poll() is not None, timeout=60, what="the worker to stop")
        assert worker.popen.returncode != 0, worker.output()[-3000:]
        assert "Unrecoverable error" in worker.output()
    finally:
        client.delete(queue_key)
        client.close()
        worker.stop()
