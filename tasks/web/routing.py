"""`StrictRoute`: every JSON body is parsed by `tasks.web.strict`, and the caller's key is
checked before any refusal of the body (an unauthenticated caller learns nothing about it).

A body is JSON when its `Content-Type` says `application/json` (or `application/*+json`), or
when there is no `Content-Type` at all (as FastAPI reads it); any other media type is a 415.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from errors import InvalidFieldError
from tasks.web import strict
from tasks.web.auth import principal_of

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


CONTENT_TYPE = "Content-Type"


class UnsupportedMediaTypeError(InvalidFieldError):
    """A body sent as something other than JSON (curl's `-d` alone sends a form)."""

    status, code = 415, "unsupported_media_type"

    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"the body must be JSON: send `Content-Type: application/json`, not {content_type!r}",
            field=CONTENT_TYPE,
        )


def require_json(content_type: str | None) -> None:
    """Raise UnsupportedMediaTypeError unless `content_type` is JSON's, or absent."""
    if not content_type:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    if maintype != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise UnsupportedMediaTypeError(content_type)


def bearer_token(request: Request) -> str | None:
    """The request's bearer credentials, None if absent or not `Bearer`."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    return credentials if scheme.lower() == "bearer" and credentials else None


async def authenticate_first(request: Request) -> None:
    """Raise 401 unless the request carries a live key (its scopes are the route's business)."""
    await run_in_threadpool(principal_of, request.app.state.settings, bearer_token(request))


def _secured(dependant: Dependant) -> bool:
    """Whether a security scheme (the bearer key) is among the route's dependencies."""
    return any(isinstance(d.call, SecurityBase) or _secured(d) for d in dependant.dependencies)


class StrictRoute(APIRoute):
    """An APIRoute whose JSON body goes through `strict.loads`, after the key if it is bad."""

    def screen(self, request: Request, raw: bytes) -> None:
        """Refuse, before any parsing, what the route never takes (nothing, unless overridden);
        a refusal is an InvalidFieldError, told only once the key checks out."""

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, behind the screen and the strict parse of the body."""
        handler = super().get_route_handler()
        secured = _secured(self.dependant)
        takes_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            raw = await request.body()
            try:
                self.screen(request, raw)
                if raw and takes_body:
                    require_json(request.headers.get("content-type"))
                    request._json = strict.loads(raw)  # what FastAPI's `request.json()` returns
            except InvalidFieldError:
                if secured:
                    await authenticate_first(request)
                raise
            return await handler(request)

        return strict_handler
