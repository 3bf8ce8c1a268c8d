"""Beat slots: interval entries by period, crontab entries by minute; relay priorities."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.beat import ScheduleEntry
from celery.schedules import crontab, schedule

from workers.relay import kombu_priority
from workers.schedule import slot_of

app = Celery(set_as_current=False)


def entry(sched: object) -> ScheduleEntry:
    return ScheduleEntry(name="e", task="t", schedule=sched, app=app)


def test_interval_entries_share_a_slot_within_one_period() -> None:
    every_five = entry(schedule(timedelta(seconds=5)))
    assert slot_of(every_five, 100.0) == slot_of(every_five, 104.9) == 20
    assert slot_of(every_five, 105.0) == 21


def test_crontab_entries_slot_by_minute() -> None:
    nightly = entry(crontab(minute=0, hour=3))
    assert slot_of(nightly, 120.0) == slot_of(nightly, 179.0) == 2


def test_more_urgent_jobs_land_on_kombus_first_served_list() -> None:
    assert kombu_priority(9) == 0
    assert kombu_priority(0) == 9
