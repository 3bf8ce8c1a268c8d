"""Beat: the maintenance schedule, and a scheduler that fires each (entry, slot) once."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.beat import ScheduleEntry, Scheduler, SchedulingError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from config import Settings
from logs import get_logger
from store.db import transaction
from store.models import ScheduleFire
from tasks.enqueue import enqueue
from tasks.maintenance import apply_retention, reap
from tasks.registry import domains
from workers.relay import drain
from workers.runner import worker_name
from workers.task_events import attempt_events

log = get_logger("switchyard.beat")


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The core's maintenance entries (intervals from settings), then the domains' jobs."""
    jobs = {
        name: {"task": every.job_type, "schedule": timedelta(seconds=every.interval(settings))}
        for name, every in domains(settings).schedule().items()
    }
    return {
        "relay-sweep": {
            "task": "maintenance.relay_sweep",
            "schedule": timedelta(seconds=settings.relay.sweep_interval),
        },
        "reaper": {
            "task": "maintenance.reap",
            "schedule": timedelta(seconds=settings.reaper.interval),
        },
        "retention": {
            "task": "maintenance.retention",
            "schedule": timedelta(seconds=settings.retention.interval),
        },
        **jobs,
    }


def slot_of(entry: ScheduleEntry, now: float) -> int:
    """The slot an entry fires in: interval entries by their period, crontab ones by minute."""
    period = getattr(entry.schedule, "run_every", None)
    seconds = period.total_seconds() if isinstance(period, timedelta) else 60.0
    return int(now // max(seconds, 1.0))


def claim_slot(app: Celery, name: str, slot: int) -> bool:
    """Record the fire; False when another beat already fired this slot.

    A domain's entry is a job: it is enqueued in the transaction that records the fire, so a
    slot's job exists exactly when its fire does, whichever beat won and whatever crashed.
    """
    settings: Settings = app.settings
    job = domains(settings).schedule().get(name)
    with transaction(settings) as session:
        inserted = session.execute(
            insert(ScheduleFire)
            .values(schedule=name, slot=slot, fired_by=worker_name())
            .on_conflict_do_nothing()
            .returning(ScheduleFire.slot)
        ).one_or_none()
        if inserted is not None and job is not None:
            enqueue(session, job.job_type, dict(job.payload), producer="beat", settings=settings)
    return inserted is not None


class LedgerScheduler(Scheduler):
    """An in-memory beat scheduler that asks the ledger before each fire."""

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Fire `entry` only if this beat wins its slot."""
        slot = slot_of(entry, time.time())
        try:
            won = claim_slot(self.app, entry.name, slot)
        except DBAPIError as exc:
            log.warning("beat_ledger_unavailable", schedule=entry.name, error=str(exc))
            return
        if not won:
            log.info("beat_slot_taken", schedule=entry.name, slot=slot)
            return
        # A tick is routine: at debug, so the dev log shows the work, not the clock.
        log.debug("beat_fired", schedule=entry.name, slot=slot)
        if entry.task in domains(self.app.settings).specs:
            return  # a domain's entry: its job was enqueued with the fire
        try:  # a core task: send it now (Scheduler.apply_entry would log each send at INFO)
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            log.warning("beat_send_failed", schedule=entry.name, error=str(exc))


def register_maintenance_tasks(app: Celery, settings: Settings) -> None:
    """The tasks beat fires; each is idempotent, so a duplicate message is harmless. They send
    no task events and log at debug: ticks every few seconds would bury the jobs in Flower's
    task list and in the log (what they find to do logs itself: lease expiries, publishes)."""
    options: dict[str, Any] = {"queue": "maintenance", "typing": False, "send_events": False}

    @app.task(name="maintenance.relay_sweep", **options)
    def relay_sweep() -> int:
        sent = drain(app, settings).sent
        # Rows the relay had not published yet: worth a line.
        (log.info if sent else log.debug)("relay_swept", published=sent)
        return sent

    @app.task(name="maintenance.reap", bind=True, **options)
    def reap_task(task: Task) -> dict[str, int]:
        with transaction(settings) as session:
            report = reap(session, settings)
        if report.lost:  # the lost attempts' outcomes, for Flower (sent once committed)
            with attempt_events(app, hostname=task.request.hostname) as events:
                for job in report.lost:
                    events.lost(job)
        log.debug("reaped", **report.counts())
        return report.counts()

    @app.task(name="maintenance.retention", **options)
    def retention_task() -> dict[str, int]:
        with transaction(settings) as session:
            purged = apply_retention(session, settings)
        log.debug("retention_applied", **purged)
        return purged
