"""The one exception handler: what problem+json each kind of error becomes (no I/O)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from errors import InvalidFieldError, SwitchyardError
from producers.api.errors import install_error_handlers
from producers.api.routes.jobs import JobNotFoundError
from tasks.enqueue import IdempotencyKeyReusedError
from tasks.notifications.endpoints import EndpointExistsError
from tasks.notifications.templates import TemplateNotFoundError
from tasks.registry import UnknownJobTypeError
from tasks.web.auth import InvalidApiKeyError, MissingScopeError

BASE = "https://switchyard.dev/problems/"


def answer(exc: Exception) -> tuple[int, dict[str, str], dict[str, Any]]:
    """What an app with only the error handlers answers when a route raises `exc` (the app
    is called in memory, over no socket)."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def fail() -> None:
        raise exc

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            return await client.get("/")

    resp = asyncio.run(get())
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == resp.status_code
    assert body["type"] == BASE + body["code"]
    return resp.status_code, dict(resp.headers), body


def test_an_invalid_field_names_the_field_and_lists_it() -> None:
    status, _, body = answer(InvalidFieldError("must be positive", field="payload.x"))
    assert status == 422
    assert body == {
        "type": BASE + "invalid_field",
        "title": "Invalid field",
        "status": 422,
        "detail": "payload.x: must be positive",
        "code": "invalid_field",
        "field": "payload.x",
        "errors": [{"field": "payload.x", "message": "must be positive"}],
    }


@pytest.mark.parametrize(
    ("exc", "status", "code", "field"),
    [
        (UnknownJobTypeError("nope"), 422, "unknown_job_type", "type"),
        (IdempotencyKeyReusedError("used"), 422, "idempotency_key_reused", "Idempotency-Key"),
        (EndpointExistsError("taken"), 409, "endpoint_exists", "url"),
        (TemplateNotFoundError("greet", version=2), 404, "template_not_found", None),
        (MissingScopeError("jobs:write"), 403, "missing_scope", None),
        (JobNotFoundError(uuid.uuid4()), 404, "job_not_found", None),
    ],
)
def test_subclasses_answer_with_their_own_status_code_and_field(
    exc: SwitchyardError, status: int, code: str, field: str | None
) -> None:
    answered, _, body = answer(exc)
    assert (answered, body["code"], body.get("field")) == (status, code, field)
    assert body["detail"] == exc.detail


def test_members_and_headers_travel_with_the_problem() -> None:
    _, _, body = answer(MissingScopeError("jobs:write"))
    assert body["scope"] == "jobs:write"
    assert body["detail"] == "this key lacks the 'jobs:write' scope"
    status, headers, body = answer(InvalidApiKeyError())
    assert (status, body["code"], headers["www-authenticate"]) == (401, "invalid_api_key", "Bearer")
    assert "errors" not in answer(IdempotencyKeyReusedError("used"))[2]


def test_the_ledger_being_down_is_a_503_with_retry_after() -> None:
    status, headers, body = answer(OperationalError("SELECT 1", {}, ConnectionError("down")))
    assert (status, body["code"], headers["retry-after"]) == (503, "database_unavailable", "5")


def test_a_fault_answers_500_without_its_message() -> None:
    status, _, body = answer(SwitchyardError("set THE_KEY_VARIABLE"))
    assert (status, body["code"]) == (500, "internal_error")
    assert "THE_KEY_VARIABLE" not in body["detail"]
