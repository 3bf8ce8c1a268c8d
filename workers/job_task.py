"""The Celery task per job type: each message carries a batch of job ids (workers.runner)."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from config import Settings
from store.states import PoisonReason
from tasks.context import Handler
from tasks.registry import JobSpec
from workers.poison import discard, parse_job_ids
from workers.runner import run_batch
from workers.task_events import attempt_events


def register_job_task(app: Celery, *, spec: JobSpec, handler: Handler, settings: Settings) -> Task:
    """Register the Celery task that runs batches of job type `spec` (its argument: the
    batch's job ids); the lease bounds its time limit. The task sends no events of its own:
    each job's attempt sends its own (workers.task_events)."""
    lease = settings.policy_for(spec.name).lease_timeout

    def run(task: Task, *args: Any, **kwargs: Any) -> dict[str, str]:
        job_ids = parse_job_ids(args, kwargs)
        if job_ids is None:  # not a batch of job ids: no job of ours can be in it
            discard(PoisonReason.MALFORMED_ARGS, job_type=spec.name, args=repr(args)[:200])
            return {}
        with attempt_events(app, hostname=task.request.hostname) as events:
            outcomes = run_batch(
                job_ids, spec=spec, handler=handler, settings=settings, events=events
            )
        return {job_id: outcome.value for job_id, outcome in outcomes.items()}

    run.__doc__ = spec.description
    return app.task(
        name=spec.name,
        bind=True,
        send_events=False,
        time_limit=lease,
        soft_time_limit=max(1, lease - 5) if lease > 10 else None,
        typing=False,
    )(run)
