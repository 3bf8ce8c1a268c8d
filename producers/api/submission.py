"""What `POST /v1/jobs` reads and answers, without FastAPI's per-request parameter machinery.

The three headers the route needs come straight from the ASGI scope, the body is parsed by
`tasks.web.strict` (the parser of every route) and validated by one `model_validate`, and the
202 body is formatted rather than built as a model and dumped. Refusals are InvalidFieldErrors
naming `Idempotency-Key`, `body` or `<field>`, as the other routes' are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.types import Scope

from errors import InvalidFieldError
from producers.api.schemas import IDEMPOTENCY_KEY_MAX, JobRequest
from store.states import JobState
from tasks.web import strict
from tasks.web.routing import require_json

IDEMPOTENCY_KEY = "Idempotency-Key"
_ACCEPTED = JobState.ACCEPTED.value  # a plain str: formatted into every 202


@dataclass(frozen=True)
class SubmitHeaders:
    """What the route reads from the request's headers."""

    token: str | None  # the bearer credentials, None if absent or not `Bearer`
    idempotency_key: str | None
    content_type: str | None

    @classmethod
    def of(cls, scope: Scope) -> SubmitHeaders:
        """Pick the headers from the scope (the first of repeated ones, as Starlette does)."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in (b"authorization", b"idempotency-key", b"content-type"):
                found.setdefault(name, value)
        scheme, credentials = get_authorization_scheme_param(_text(found.get(b"authorization")))
        bearer_token = credentials if scheme.lower() == "bearer" and credentials else None
        return cls(
            bearer_token, _text(found.get(b"idempotency-key")), _text(found.get(b"content-type"))
        )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def read_job_request(body: bytes, headers: SubmitHeaders) -> JobRequest:
    """The validated body, or InvalidFieldError naming the header or body field at fault."""
    key = headers.idempotency_key
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        message = f"String should have at most {IDEMPOTENCY_KEY_MAX} characters"
        raise InvalidFieldError(message, field=IDEMPOTENCY_KEY)
    if key is not None and "\x00" in key:
        raise strict.InvalidTextError("NUL characters cannot be stored", field=IDEMPOTENCY_KEY)
    if not body:
        raise InvalidFieldError("Field required", field="body")
    require_json(headers.content_type)
    value = strict.loads(body)
    if not isinstance(value, dict):
        raise InvalidFieldError("Input should be a JSON object", field="body")
    try:
        return JobRequest.model_validate(value)
    except ValidationError as exc:
        raise strict.invalid_fields(exc) from exc


def accepted_body(job_id: uuid.UUID) -> bytes:
    """The 202 body, a `JobAccepted` (a job id needs no JSON escaping)."""
    base = f"/v1/jobs/{job_id}"
    return (
        f'{{"id":"{job_id}","state":"{_ACCEPTED}","links":'
        f'{{"self":"{base}","cancel":"{base}/cancel","retry":"{base}/retry"}}}}'
    ).encode()
