"""`StrictRoute`: every JSON body is parsed by `tasks.web.strict`, and the caller's key is
checked before any refusal of the body (an unauthenticated caller learns nothing about it)."""

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


def is_json(content_type: str | None, *, default: bool) -> bool:
    """True for `application/json` and `application/*+json` (`default` when there is none)."""
    if not content_type:
        return default
    media_type = content_type.partition(";")[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


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

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, behind the strict parse of the body."""
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        secured = _secured(self.dependant)

        async def strict_handler(request: Request) -> Response:
            raw = await request.body()
            # FastAPI parses a body without Content-Type as JSON too: so does this.
            if raw and is_json(request.headers.get("content-type"), default=True):
                try:
                    request._json = strict.loads(raw)  # what FastAPI's `request.json()` returns
                except InvalidFieldError:
                    if secured:
                        await authenticate_first(request)
                    raise
            return await handler(request)

        return strict_handler
