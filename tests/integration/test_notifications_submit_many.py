"""Accepting several notifications in one call, against the real PostgreSQL: the rate limit
counts the call's own sends, a dedup key held earlier in the call answers with that one, and
every new notification gets exactly one delivery job due at its send time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from config import Settings
from store.db import transaction
from store.models import Job
from tasks.notifications.models import Notification
from tasks.notifications.schemas import NotificationRequest
from tasks.notifications.service import submit, submit_many
from tests.support.notifications import stack_settings


@pytest.fixture
def own(settings: Settings, clean_ledger: None) -> Settings:
    return stack_settings(settings, smtp_port=2525, rate_limit_count=2, rate_limit_period=60)


def _email(to: str, *, dedup_key: str | None = None) -> NotificationRequest:
    return NotificationRequest(
        channel="email", to=to, subject="s", body="b", dedup_key=dedup_key
    )  # fmt: skip


def test_one_call_keeps_the_rate_limit_over_its_own_sends(own: Settings) -> None:
    with transaction(own) as s:
        earlier = submit(s, _email("carol@example.com"), producer="p", settings=own)
    with transaction(own) as s:
        sent = submit_many(
            s, [_email("carol@example.com") for _ in range(4)] + [_email("dave@example.com")],
            producer="p", settings=own,
        )  # fmt: skip
    t0 = earlier.send_at
    offsets = [(x.send_at - t0).total_seconds() for x in sent]
    # 2 per 60 s: one more now (beside the earlier one), two a minute on, one two minutes on.
    assert offsets[0] < 5
    assert 60 <= offsets[1] < 65 and 60 <= offsets[2] < 65
    assert 120 <= offsets[3] < 125
    assert offsets[4] < 5  # another recipient is not held back
    assert not any(x.deduplicated for x in sent)
    with transaction(own) as s:
        rows = s.execute(
            select(Notification.id, Notification.send_at, Job.run_at, Job.type)
            .join(Job, Job.id == Notification.job_id)
            .where(Notification.id.in_([x.id for x in sent]))
        ).all()
    assert len(rows) == 5
    assert all(r.type == "notifications.deliver" and r.run_at == r.send_at for r in rows)
    assert {r.id for r in rows} == {x.id for x in sent}


def test_a_dedup_key_held_earlier_in_the_call_answers_with_that_one(own: Settings) -> None:
    with transaction(own) as s:
        first, again, other, spelled = submit_many(
            s,
            [
                _email("bob@example.com", dedup_key="k"),
                _email("bob@example.com", dedup_key="k"),
                _email("eve@example.com", dedup_key="k"),
                _email("bob@EXAMPLE.com", dedup_key="k"),  # same mailbox, other spelling
            ],
            producer="p",
            settings=own,
        )
    assert (again.id, again.job_id, again.deduplicated) == (first.id, first.job_id, True)
    assert (spelled.id, spelled.deduplicated) == (first.id, True)
    assert other.id != first.id and not other.deduplicated and not first.deduplicated
    with transaction(own) as s:
        replay = submit(s, _email("bob@example.com", dedup_key="k"), producer="p", settings=own)
        count = len(s.scalars(select(Notification.id)).all())
    assert (replay.id, replay.deduplicated) == (first.id, True)
    assert count == 2
    assert first.send_at - other.send_at < timedelta(seconds=1)
