"""How the relay groups due outbox rows into deliveries (one broker message each)."""

from __future__ import annotations

import uuid

from store.outbox import DueMessage
from workers.relay import group_deliveries


def row(
    job_type: str, *, priority: int = 0, lost: int = 0, queue: str = "maintenance"
) -> DueMessage:
    return DueMessage(0, uuid.uuid4(), job_type, queue, priority, lost)


def sizes(name: str) -> int:
    return {"echo": 2, "sleep": 1}.get(name, 3)


def test_jobs_of_one_type_queue_and_priority_share_deliveries_up_to_the_batch_size() -> None:
    rows = [row("echo") for _ in range(5)]
    deliveries = group_deliveries(rows, sizes)
    assert [len(d) for d in deliveries] == [2, 2, 1]
    assert [m for d in deliveries for m in d] == rows  # nothing lost, order kept


def test_type_priority_and_queue_each_split_deliveries() -> None:
    a, b = row("echo"), row("echo", priority=9)
    c, d = row("other"), row("other", queue="notifications")
    e = row("other")
    assert group_deliveries([a, b, c, d, e], sizes) == [[a], [b], [c, e], [d]]


def test_a_type_that_does_not_batch_travels_one_job_a_message() -> None:
    rows = [row("sleep") for _ in range(3)]
    assert group_deliveries(rows, sizes) == [[r] for r in rows]


def test_a_job_that_lost_a_worker_before_travels_alone() -> None:
    a, lost, b = row("echo"), row("echo", lost=1), row("echo")
    assert group_deliveries([a, lost, b], sizes) == [[a, b], [lost]]
