"""How the relay groups due outbox rows into batches (one broker message each)."""

from __future__ import annotations

import uuid

import pytest

from config import JobPolicy, Settings
from store.outbox import DueMessage
from tasks.registry import domains
from workers.relay import group_batches

pytestmark = pytest.mark.usefixtures("no_io")


def row(
    job_type: str, *, priority: int = 0, lost: int = 0, queue: str = "maintenance"
) -> DueMessage:
    return DueMessage(0, uuid.uuid4(), job_type, queue, priority, lost)


def sizes(name: str) -> int:
    return {"echo": 2, "sleep": 1}.get(name, 3)


def test_jobs_of_one_type_queue_and_priority_share_batches_up_to_the_batch_size() -> None:
    rows = [row("echo") for _ in range(5)]
    batches = group_batches(rows, sizes)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [m for b in batches for m in b] == rows  # nothing lost, order kept


def test_type_priority_and_queue_each_split_batches() -> None:
    a, b = row("echo"), row("echo", priority=9)
    c, d = row("other"), row("other", queue="notifications")
    e = row("other")
    assert group_batches([a, b, c, d, e], sizes) == [[a], [b], [c, e], [d]]


def test_a_type_that_does_not_batch_travels_one_job_a_message() -> None:
    rows = [row("sleep") for _ in range(3)]
    assert group_batches(rows, sizes) == [[r] for r in rows]


def test_a_job_that_lost_a_worker_before_travels_alone() -> None:
    a, lost, b = row("echo"), row("echo", lost=1), row("echo")
    assert group_batches([a, lost, b], sizes) == [[a, b], [lost]]


def test_rows_of_one_kind_share_a_batch_even_when_others_come_between() -> None:
    a1, other, a2 = row("echo"), row("other"), row("echo")
    assert group_batches([a1, other, a2], sizes) == [[a1, a2], [other]]


def test_a_full_batch_closes_and_batches_keep_the_order_of_their_first_rows() -> None:
    e1, e2, o1, e3 = row("echo"), row("echo"), row("other"), row("echo")
    assert group_batches([e1, e2, o1, e3], sizes) == [[e1, e2], [o1], [e3]]


def test_jobs_that_lost_a_worker_each_travel_alone_and_take_no_place_in_a_batch() -> None:
    a, b, c = row("echo"), row("echo"), row("echo")
    lost1, lost2 = row("echo", lost=1), row("echo", lost=3)
    assert group_batches([a, lost1, lost2, b, c], sizes) == [[a, b], [lost1], [lost2], [c]]


def test_each_job_type_is_held_to_its_own_batch_size() -> None:
    echoes, others = [row("echo") for _ in range(3)], [row("other") for _ in range(3)]
    mixed = [m for pair in zip(echoes, others, strict=True) for m in pair]
    assert group_batches(mixed, sizes) == [echoes[:2], others, echoes[2:]]
    assert group_batches([], sizes) == []


def test_a_policy_batch_size_wins_over_the_job_types_own_and_an_unknown_type_goes_alone() -> None:
    plain = Settings()
    registry = domains(plain)
    spec = registry.spec("notifications.deliver")
    assert spec.batch_size > 1
    assert registry.batch_size(plain, spec.name) == spec.batch_size
    tuned = Settings(job_policies={spec.name: JobPolicy(batch_size=3)})
    assert registry.batch_size(tuned, spec.name) == 3
    assert registry.batch_size(plain, "no.such.type") == 1
