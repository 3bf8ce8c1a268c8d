"""How a job's code says whether a failure is worth another attempt."""

from __future__ import annotations

from store.errors import SwitchyardError


class JobError(SwitchyardError):
    """A job failed."""

    code = "job_failed"


class RetryableError(JobError):
    """A passing failure: try again later (optionally not before `retry_after` seconds)."""

    code = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(JobError):
    """A failure no retry can fix: the job goes straight to `dead`."""

    code = "permanent"
