"""Diagnostic job types for operators and tests."""

from __future__ import annotations

from config import MAINTENANCE_QUEUE
from tasks.registry import Domain
from tasks.system.schemas import ECHO, FAIL, SLEEP

DOMAIN = Domain(
    name="system",
    job_types=(ECHO, SLEEP, FAIL),
    queues=(MAINTENANCE_QUEUE,),
    handlers="tasks.system.jobs",
)
