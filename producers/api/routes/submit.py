"""`POST /v1/jobs`: submit a job — the intake's hottest route, kept lean.

It is routed on the app itself, ahead of the routers (an included router costs a second
matching pass per request), and served by `LeanRoute`: the endpoint takes the `Request` and
returns the `Response`, without FastAPI's per-request parameter solving; `producers.api.
submission` reads the headers and body as the declared parameters did, and `OPENAPI` documents
them. Errors still go through the app's exception handlers (problem+json).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response, status
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from errors import InvalidFieldError, SwitchyardError, UnauthenticatedError
from producers.api import submission
from producers.api.routes.jobs import router as jobs_router
from producers.api.schemas import IDEMPOTENCY_KEY_MAX, JobAccepted, JobRequest
from store.metrics import job_accepted
from tasks.enqueue import JobDraft, draft_job
from tasks.web.auth import bearer

OPENAPI: dict[str, Any] = {
    "security": [{bearer.scheme_name: []}],
    "parameters": [
        {
            "name": submission.IDEMPOTENCY_KEY,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
            "description": "Same key and body within 24 h returns the original job.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": JobRequest.model_json_schema()}},
    },
}


class BodyUnreadableError(SwitchyardError):
    """The client went away, or was cut off, before its body arrived."""

    status, code = 400, "body_unreadable"


class LeanRoute(APIRoute):
    """An APIRoute whose endpoint is its own request handler: `(Request) -> Response`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself, with no parameter solving around it."""
        return self.endpoint


def install(app: FastAPI) -> None:
    """Route `POST /v1/jobs` on `app` (call it before including the routers)."""
    app.router.add_api_route(
        jobs_router.prefix,
        submit_job,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=JobAccepted,
        tags=list(jobs_router.tags),
        openapi_extra=OPENAPI,
        route_class_override=LeanRoute,
    )


async def submit_job(request: Request) -> Response:
    """Accept a job: 202 means it is committed to the ledger and will reach a terminal state."""
    headers = submission.SubmitHeaders.of(request.scope)
    if headers.token is None:  # before the body is read: a caller without a key learns nothing
        raise UnauthenticatedError()
    try:
        raw = await request.body()
    except ClientDisconnect as exc:  # gone, or cut off by BodySizeLimit (which answers 413)
        raise BodyUnreadableError("the request body could not be read") from exc
    body: JobRequest | None = None
    try:
        body = submission.read_job_request(raw, headers)
        draft: JobDraft | SwitchyardError = draft_job(
            body.type,
            body.payload,
            producer="",  # the writer fills in the key's producer once it has authenticated it
            priority=body.priority,
            run_at=body.run_at,
            max_attempts=body.max_attempts,
            idempotency_key=headers.idempotency_key,
            callback_url=body.callback_url,
            callback_secret=body.callback_secret,
            settings=request.app.state.settings,
        )
    except InvalidFieldError as exc:
        draft = exc  # told only after the key checks out: a bad key gets 401, not the schema
    outcome = await request.app.state.intake.submit(headers.token, draft)
    assert body is not None  # a refused draft raises from `submit`
    job_accepted(body.type, created=outcome.created)
    location = {"Location": f"/v1/jobs/{outcome.job_id}"}
    if not outcome.created:
        location["Idempotent-Replayed"] = "true"
    return Response(
        submission.accepted_body(outcome.job_id),
        status.HTTP_202_ACCEPTED,
        location,
        media_type="application/json",
    )
