"""The OpenAPI document states every operation's refusals: `4XX` and `503` problem+json, and
`415` on every operation that takes a body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from producers.api.errors import MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `field` names what is at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
UNSUPPORTED_MEDIA_TYPE = (
    "The body is not JSON: send `Content-Type: application/json` (none at all also reads as "
    "JSON); `code` is `unsupported_media_type`."
)
REFUSALS = {
    "4XX": "Refused: problem+json whose `code` says why and `field` (if any) what.",
    "503": "A dependency is down; nothing was done. Retry after `Retry-After` seconds.",
}


def document_problems(app: FastAPI) -> None:
    """Make `app.openapi()` list the problem+json refusals on every operation."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in spec["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in REFUSALS.items():
                    responses[status] = {"description": description, "content": content}
                if "requestBody" in operation:
                    responses["415"] = {"description": UNSUPPORTED_MEDIA_TYPE, "content": content}
                # FastAPI's own 422 (HTTPValidationError) is never sent: the 4XX covers it.
                responses.pop("422", None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
