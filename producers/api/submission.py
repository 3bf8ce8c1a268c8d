"""What `POST /v1/jobs` reads and answers, without FastAPI's per-request parameter machinery.

The three headers the route needs come straight from the ASGI scope, the body is validated by
one `model_validate_json` of the raw bytes (no `json.loads` first), and the 202 body is
formatted rather than built as a model and dumped. Refusals are the ones FastAPI raised for
declared parameters — a `RequestValidationError` located at `header.Idempotency-Key` or
`body.<field>` (malformed JSON included) — so the problem+json handler names the same fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.types import Scope

from producers.api.schemas import JobRequest
from store.states import JobState

IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255
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
    """The validated body, or RequestValidationError listing header then body errors."""
    job, body_errors = _validate_body(body, headers.content_type)
    errors = _key_errors(headers.idempotency_key) + body_errors
    if errors or job is None:
        raise RequestValidationError(errors)
    return job


def _key_errors(key: str | None) -> list[dict[str, Any]]:
    if key is None or len(key) <= IDEMPOTENCY_KEY_MAX:
        return []
    message = f"String should have at most {IDEMPOTENCY_KEY_MAX} characters"
    return [
        {
            "type": "string_too_long",
            "loc": ("header", IDEMPOTENCY_KEY),
            "msg": message,
            "input": key,
            "ctx": {"max_length": IDEMPOTENCY_KEY_MAX},
        }
    ]


def _validate_body(
    body: bytes, content_type: str | None
) -> tuple[JobRequest | None, list[dict[str, Any]]]:
    if not body:
        return None, [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
    if not _is_json(content_type):
        message = "Input should be a JSON object (Content-Type: application/json)"
        return None, [{"type": "model_attributes_type", "loc": ("body",), "msg": message}]
    try:
        return JobRequest.model_validate_json(body), []
    except ValidationError as exc:
        return None, [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


def _is_json(content_type: str | None) -> bool:
    """True for `application/json` and `application/*+json`, as FastAPI decides."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def accepted_body(job_id: uuid.UUID) -> bytes:
    """The 202 body, a `JobAccepted` (a job id needs no JSON escaping)."""
    base = f"/v1/jobs/{job_id}"
    return (
        f'{{"id":"{job_id}","state":"{_ACCEPTED}","links":'
        f'{{"self":"{base}","cancel":"{base}/cancel","retry":"{base}/retry"}}}}'
    ).encode()
