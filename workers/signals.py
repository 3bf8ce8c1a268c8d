"""Celery signal hooks: our logging instead of Celery's; poison Celery itself refused, counted."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, task_rejected, task_unknown

from config import get_settings
from logs import configure_logging
from store.states import PoisonReason
from workers.poison import discard

# Celery's line per message received and per task finished: a message is a batch of jobs,
# whose own lines (batch_claimed, job_succeeded, job_retrying, job_dead) say what happened,
# and the maintenance ticks every few seconds would bury them. Errors still show.
PER_MESSAGE_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Keep Celery's own logs in the same structured stream as ours."""
    configure_logging(get_settings().resolved_log_format)
    for name in PER_MESSAGE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@task_unknown.connect
def _count_unknown_task(*, name: str, id: str, **_: Any) -> None:
    """A message for a task no worker has: Celery logged and rejected it; count it."""
    discard(PoisonReason.UNKNOWN_TASK, task=name, task_id=id)


@task_rejected.connect
def _count_rejected(*, exc: BaseException | None, **_: Any) -> None:
    """A message Celery could not read as a task (no task name, bad content): rejected."""
    reason = PoisonReason.UNKNOWN_TASK if exc is None else PoisonReason.INVALID_TASK
    discard(reason, error=None if exc is None else f"{type(exc).__name__}: {exc}")
