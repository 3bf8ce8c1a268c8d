"""The Celery application: JSON only, late acks, one queue per domain, a task per job type."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init
from kombu.entity import Queue

from config import MAINTENANCE_QUEUE, PRIORITY_SEP, PRIORITY_STEPS, Settings, get_settings
from tasks.registry import domains
from workers.job_task import register_job_task
from workers.schedule import beat_schedule, register_maintenance_tasks


def broker_transport_options(settings: Settings) -> dict[str, object]:
    """Kombu's Redis options, shared by the workers and the relay."""
    options: dict[str, object] = {
        "visibility_timeout": settings.redis.visibility_timeout,
        "unacked_restore_interval": settings.redis.unacked_restore_interval,
        "unacked_restore_throttle": 1,
        "priority_steps": list(PRIORITY_STEPS),
        "sep": PRIORITY_SEP,
    }
    if settings.redis.key_prefix:
        options["global_keyprefix"] = settings.redis.key_prefix
    return options


def create_celery(settings: Settings | None = None) -> Celery:
    """Build the Celery app with every declared job type registered as a task."""
    settings = settings or get_settings()
    registry = domains(settings)
    registry.check(settings)
    app = Celery("switchyard", broker=settings.redis.url, set_as_current=True)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=settings.worker.prefetch_multiplier,
        worker_concurrency=settings.worker.concurrency,
        worker_hijack_root_logger=False,
        # Task events feed Flower: one task per job attempt, sent by the worker that runs it
        # (workers.task_events), each a Redis publish. A broker message is a batch, so its own
        # events would misreport its jobs: none are sent for it, `task-sent` included.
        worker_send_task_events=settings.worker.task_events,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        # A Redis outage is waited out, however long (Celery gives up after 100 retries by
        # default, ~45 minutes, and the worker then exits): the ledger keeps the jobs.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        broker_transport_options=broker_transport_options(settings),
        task_queues=[Queue(name, routing_key=name) for name in registry.queues],
        task_default_queue=MAINTENANCE_QUEUE,
        task_create_missing_queues=False,
        # A job running when the broker connection drops runs on: its outcome commits to the
        # ledger, not to Redis, and the message coming back later is dropped by the guarded
        # claim. (Cancelling it, Celery's answer to acks_late's duplicates, would throw away
        # every running job's work at each Redis blip and leave it to the reaper.)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule=beat_schedule(settings),
        beat_scheduler="workers.schedule:LedgerScheduler",
    )
    handlers = registry.handlers()
    for name, spec in registry.specs.items():
        register_job_task(app, spec=spec, handler=handlers[name], settings=settings)
    register_maintenance_tasks(app, settings)
    app.settings = settings
    return app


def run_worker(app: Celery, argv: list[str]) -> int:
    """Run `celery worker ARGV` in this process and return the worker's exit status, which
    Celery's `worker_main` drops (an unrecoverable error would otherwise exit 0).

    The worker consumes through the poison-proof Redis transport and consumer of
    workers.broker; every other process (relay, beat, Flower, whose broker page knows brokers
    by their URL's scheme) keeps Kombu's own."""
    app.conf.update(
        broker_transport="workers.broker:Transport", worker_consumer="workers.broker:Consumer"
    )
    started: list[Any] = []

    def keep(sender: Any, **_: Any) -> None:
        started.append(sender)

    worker_init.connect(keep, weak=False)
    try:
        app.worker_main(argv)
    finally:
        worker_init.disconnect(keep)
    return int(started[-1].exitcode or 0) if started else 0
