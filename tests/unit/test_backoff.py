"""Backoff and the retry-or-dead rule: exponential, capped, fully jittered; retry_after wins."""

from __future__ import annotations

import uuid

import pytest

from config import JobPolicy
from errors import PermanentError, RetryableError
from store.jobs import ClaimedJob
from workers.outcomes import backoff_delay, retry_delay

pytestmark = pytest.mark.usefixtures("no_io")


def job(attempt: int, *, max_attempts: int = 5) -> ClaimedJob:
    return ClaimedJob(
        uuid.uuid4(), "system.echo", "maintenance", {}, 0, attempt, max_attempts, "s", uuid.uuid4()
    )


def test_without_jitter_the_delay_doubles_until_the_cap() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=False)
    assert [backoff_delay(policy, n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_between_zero_and_the_exponential_ceiling() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=100.0, jitter=True)
    delays = [backoff_delay(policy, 4) for _ in range(500)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 400  # really random, not a constant
    assert min(delays) < 8.0 / 4 and max(delays) > 8.0 * 3 / 4  # spread over the whole range


def test_jitter_never_exceeds_the_cap_however_late_the_attempt() -> None:
    policy = JobPolicy(backoff_base=2.0, backoff_cap=30.0, jitter=True)
    delays = [backoff_delay(policy, attempt) for attempt in range(1, 101) for _ in range(20)]
    assert max(delays) <= policy.backoff_cap
    assert max(delays) > policy.backoff_cap / 2  # late attempts draw from the capped range


def test_retry_after_overrides_the_policy() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=False)
    assert backoff_delay(policy, 3, retry_after=42.0) == 42.0


@pytest.mark.parametrize("retry_after", [0.0, 3.5, 10_000.0])
def test_retry_after_wins_over_jitter_and_the_cap(retry_after: float) -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=True)
    assert {backoff_delay(policy, 2, retry_after=retry_after) for _ in range(50)} == {retry_after}


def test_a_retryable_failure_waits_its_backoff_and_a_bare_exception_counts_as_retryable() -> None:
    policy = JobPolicy(backoff_base=1.0, backoff_cap=60.0, jitter=False)
    assert retry_delay(RetryableError("later"), job(3), policy=policy) == 4.0
    assert retry_delay(RuntimeError("bug?"), job(3), policy=policy) == 4.0
    assert retry_delay(RetryableError("later", retry_after=7), job(3), policy=policy) == 7


def test_a_permanent_failure_or_the_last_attempt_is_dead() -> None:
    policy = JobPolicy(jitter=False)
    assert retry_delay(PermanentError("no"), job(1), policy=policy) is None
    assert retry_delay(RetryableError("later"), job(5, max_attempts=5), policy=policy) is None
    assert retry_delay(RetryableError("later"), job(4, max_attempts=5), policy=policy) is not None
