"""RFC 9457 problem+json bodies for every error the intake returns."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import InterfaceError as DriverInterfaceError
from psycopg import OperationalError as DriverOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from errors import SwitchyardError, UnavailableError
from logs import get_logger

log = get_logger("switchyard.api")
PROBLEM_BASE = "https://switchyard.dev/problems/"
MEDIA_TYPE = "application/problem+json"
# Statuses that are about the request body as a whole: their problems name `body`.
BODY_STATUSES = frozenset({400, 413, 415, 422})


class DatabaseUnavailableError(UnavailableError):
    """The job ledger cannot be reached: nothing was accepted."""

    code = "database_unavailable"


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    """A problem+json response with a stable `type` URI and `code`."""
    body = {
        "type": PROBLEM_BASE + code,
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **members,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_of(exc: SwitchyardError) -> JSONResponse:
    """The problem+json answer an error describes: its status, code, field and members."""
    members: dict[str, Any] = {}
    if exc.field is not None:
        members["field"] = exc.field
    if exc.errors is not None:
        members["errors"] = exc.errors
    members.update({name: getattr(exc, name) for name in exc.members})
    return problem(exc.status, exc.code, exc.detail, headers=dict(exc.headers), **members)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _internal_error(exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem(500, "internal_error", "an unexpected error; nothing was accepted")


def install_error_handlers(app: FastAPI) -> None:
    """Turn every known failure into problem+json; the database being down is 503, not 500."""

    @app.exception_handler(SwitchyardError)
    async def _switchyard(_: Request, exc: SwitchyardError) -> JSONResponse:
        if exc.status == 500:  # a fault, whose message is for operators, not callers
            return _internal_error(exc)
        return problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_of(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return problem(
                400, "malformed_json", "the body is not valid JSON", field="body", errors=errors
            )
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return problem(
            422,
            "invalid_field",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(DriverOperationalError)  # the intake writer's raw connection
    @app.exception_handler(DriverInterfaceError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        return problem_of(
            DatabaseUnavailableError(
                "the job ledger is unreachable; nothing was accepted, retry later"
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # A stable code from the status's own name (`method_not_allowed`); its headers kept.
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        members = {"field": "body"} if exc.status_code in BODY_STATUSES else {}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        return problem(exc.status_code, code, str(exc.detail), headers=headers, **members)


def _allowed(request: Request) -> list[str]:
    """Every method the API documents at this path (Starlette names only the first route's,
    and `POST /v1/jobs` is a route of its own beside the jobs router)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)
