"""The one root of Switchyard's own errors."""

from __future__ import annotations

from typing import Any


class SwitchyardError(Exception):
    """Base of every error Switchyard raises on purpose; `code` is stable and machine-readable."""

    code = "switchyard_error"


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


class ProblemError(Exception):
    """An HTTP error the intake raises on purpose."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra
