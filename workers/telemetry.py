"""Worker-side observability: per-delivery metrics and log context, from Celery's task signals.

`run_job` returns what happened to a delivery (`succeeded`, `retrying`, `dead`, `dropped`,
`lease_lost`); the `task_postrun` signal turns that into counters and a run-time
histogram, so the task code carries no metrics plumbing. Import this module before the
worker forks its pool (the `switchyard worker` command does).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery.signals import task_postrun, task_prerun

from logs import get_logger
from store.metrics import attempt_finished

log = get_logger("switchyard.telemetry")
RAN = frozenset({"succeeded", "retrying", "dead"})
_started: dict[str, float] = {}


@task_prerun.connect
def _on_prerun(task_id: str, task: Any, args: tuple[Any, ...] = (), **_: Any) -> None:
    _started[task_id] = time.perf_counter()
    if args:  # a job task's only argument is its job id; maintenance tasks take none
        # Celery's own lines about this delivery carry the job too, not only ours.
        structlog.contextvars.bind_contextvars(job_id=str(args[0]), job_type=task.name)


@task_postrun.connect
def _on_postrun(task_id: str, task: Any, retval: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    structlog.contextvars.unbind_contextvars("job_id", "job_type", "attempt")
    if not isinstance(retval, str):  # maintenance tasks and rejected deliveries
        return
    seconds = time.perf_counter() - started if started is not None and retval in RAN else None
    attempt_finished(task.name, outcome=retval, seconds=seconds)


def serve_worker_metrics(port: int, *, host: str = "0.0.0.0") -> None:
    """Serve this host's multiprocess metrics on `port` (for workers on hosts without an API)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
    log.info("worker_metrics_serving", port=port)
