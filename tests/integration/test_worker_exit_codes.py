"""A worker's exit status is Celery's: 0 for a shutdown on request, non-zero when it could not
go on — what `restart: on-failure` and supervisors act on (it used to be 0 whatever happened)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from config import MAINTENANCE_QUEUE, Settings
from devstack.processes import Process, free_port, isolated, settings_env, switchyard, wait_until
from tests.support.api import job_state, submit_all
from tests.support.stack import start_process, start_worker


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


def test_a_pool_child_killed_while_the_worker_starts_is_never_an_exit_0(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    """kill -9 of pool children until the worker is ready. A child that dies before Celery's
    first loop checks its pool is "Could not start worker processes", unrecoverable (it is
    what a child failing at import looks like): the worker must then exit non-zero, so that a
    supervisor restarts it (it used to exit 0). A child killed after that check is replaced
    and the worker consumes. Which of the two happens is the race; exit 0 is never right."""
    own = isolated(settings)
    worker = Process(
        switchyard("worker", "--concurrency", "1", "--hostname", "exit-pool-start@%h"),
        env=settings_env(own),
        log_path=logs_dir / f"exit-pool-start-{free_port()}.log",
    )
    try:
        while "ready." not in worker.output() and worker.popen.poll() is None:
            child = wait_until(
                lambda: _first_child(worker.popen.pid) or worker.popen.poll() is not None,
                timeout=60,
                what="a pool child to fork",
            )
            if child is not True:
                os.kill(child, signal.SIGKILL)

                def replaced(killed: int = child) -> bool:
                    return _first_child(worker.popen.pid) != killed

                wait_until(replaced, timeout=60)
        (job,) = submit_all(own, [("system.echo", {"after": "a child killed at start"})])
        relay = start_process(own, logs_dir, "relay")
        try:
            wait_until(
                lambda: worker.popen.poll() is not None or job_state(own, job) == "succeeded",
                timeout=60,
                what="the worker to run a job or to stop",
            )
        finally:
            relay.stop()
        if worker.popen.poll() is not None:
            assert worker.popen.returncode != 0, worker.output()[-3000:]
            assert "Could not start worker processes" in worker.output()
    finally:
        worker.stop()


def _first_child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None
