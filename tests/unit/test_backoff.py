"""Backoff: exponential, capped, fully jittered; a handler's retry_after wins."""

from __future__ import annotations

from config import JobPolicy
from workers.runner import backoff_delay


def test_without_jitter_the_delay_doubles_until_the_cap() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=False)
    assert [backoff_delay(policy, n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_between_zero_and_the_exponential_ceiling() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=100.0, jitter=True)
    delays = [backoff_delay(policy, 4) for _ in range(500)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 400  # really random, not a constant


def test_retry_after_overrides_the_policy() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=False)
    assert backoff_delay(policy, 3, retry_after=42.0) == 42.0
