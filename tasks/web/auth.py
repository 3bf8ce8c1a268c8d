"""Bearer-key authentication and per-route scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from errors import ProblemError
from store.api_keys import Principal, authenticate
from store.db import autocommit
from tasks.web.deps import SettingsDep

bearer = HTTPBearer(auto_error=False, description="An API key from `switchyard keys create`.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


WRITE_SCOPE = "jobs:write"


def unauthenticated() -> ProblemError:
    """401: no credentials at all."""
    return ProblemError(
        401, "unauthenticated", "send `Authorization: Bearer <api key>`", headers=CHALLENGE
    )


def invalid_key() -> ProblemError:
    """401: a key that is malformed, unknown or revoked."""
    return ProblemError(
        401, "invalid_api_key", "the API key is unknown or revoked", headers=CHALLENGE
    )


def missing_scope(scope: str) -> ProblemError:
    """403: a valid key without the scope the route needs."""
    return ProblemError(403, "missing_scope", f"this key lacks the {scope!r} scope", scope=scope)


def visible_to(principal: Principal) -> str | None:
    """The producer whose rows the caller sees (None: every producer's, for `admin`)."""
    return None if principal.allows("admin") else principal.producer


def require_scope(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds `scope`."""

    def dependency(settings: SettingsDep, credentials: CredentialsDep) -> Principal:
        if credentials is None:
            raise unauthenticated()
        # A connection of its own, in autocommit (one round trip), returned before this
        # dependency's thread ends: a request must not hold a pooled connection while it waits
        # for another threadpool slot, or enough concurrent requests deadlock the pool.
        with autocommit(settings) as session:
            principal = authenticate(session, credentials.credentials)
        if principal is None:
            raise invalid_key()
        if not principal.allows(scope):
            raise missing_scope(scope)
        return principal

    return dependency
