"""The one root of Switchyard's own errors: each carries its HTTP status, stable code and field.

The API's one exception handler (`producers.api.errors`) turns any of them into problem+json
(RFC 9457) from these attributes alone, so routes never map errors by hand. A domain keeps a
class of its own only where the class means something (a code of its own, or something that
catches it); every such class derives from one of the kinds below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class SwitchyardError(Exception):
    """Base of every error Switchyard raises on purpose.

    A status of 500 means a fault, not an answer: the API logs it and tells the caller only
    that something unexpected happened (the message is for operators).
    """

    status: int = 500
    code: str = "internal_error"
    field: str | None = None
    errors: list[dict[str, str]] | None = None
    headers: ClassVar[Mapping[str, str]] = {}
    # Names of instance attributes sent as extra problem members (`scope`, `state`).
    members: ClassVar[tuple[str, ...]] = ()

    @property
    def detail(self) -> str:
        """The problem's human-readable `detail`."""
        return str(self)


class InvalidFieldError(SwitchyardError):
    """A field of the request holds a value that cannot be accepted; nothing was written."""

    status, code = 422, "invalid_field"
    field: str

    def __init__(
        self, message: str, *, field: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or [{"field": field, "message": message}]

    @property
    def detail(self) -> str:
        """`field: message`."""
        return f"{self.field}: {self}"


class UnauthenticatedError(SwitchyardError):
    """No usable credentials: the caller is told how to authenticate."""

    status, code = 401, "unauthenticated"
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}

    def __init__(self, message: str = "send `Authorization: Bearer <api key>`") -> None:
        super().__init__(message)


class ForbiddenError(SwitchyardError):
    """The caller is known but may not do this."""

    status, code = 403, "forbidden"


class NotFoundError(SwitchyardError):
    """No such thing, or not one the caller may see."""

    status, code = 404, "not_found"


class ConflictError(SwitchyardError):
    """The thing exists but its state forbids the request."""

    status, code = 409, "conflict"


class UnavailableError(SwitchyardError):
    """A dependency is down: nothing was done, and trying again later may work."""

    status, code = 503, "unavailable"
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "5"}


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
