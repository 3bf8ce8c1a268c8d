"""How often a notification is tried, and when: the settings' retry schedule read as a policy."""

from __future__ import annotations

from collections.abc import Sequence

from config import MAX_ATTEMPTS
from tasks.notifications.channels import DeliveryError

# A completion callback's job is given all of MAX_ATTEMPTS: its trigger cannot read the
# settings, and the schedule, read by the handler on every attempt, ends it sooner.
CALLBACK_ATTEMPTS = MAX_ATTEMPTS


def max_attempts(schedule: Sequence[float]) -> int:
    """A delivery job's attempt budget: the first try, plus one per step of the schedule."""
    return min(len(schedule) + 1, MAX_ATTEMPTS)


def scheduled_retry(
    error: DeliveryError, *, attempt: int, schedule: Sequence[float]
) -> float | None:
    """Seconds until a failed delivery's next try; None if the failure is final or the schedule
    is used up."""
    if not error.retryable or attempt > len(schedule):
        return None
    return schedule[attempt - 1]
