"""Bearer-key authentication and per-route scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config import Settings
from errors import ForbiddenError, UnauthenticatedError
from store.api_keys import Principal, authenticate
from store.db import autocommit
from tasks.web.deps import SettingsDep

bearer = HTTPBearer(auto_error=False, description="An API key from `switchyard keys create`.")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


WRITE_SCOPE = "jobs:write"


class InvalidApiKeyError(UnauthenticatedError):
    """A key that is malformed, unknown or revoked."""

    code = "invalid_api_key"

    def __init__(self) -> None:
        super().__init__("the API key is unknown or revoked")


class MissingScopeError(ForbiddenError):
    """A valid key without the scope the route needs; the problem names the scope."""

    code = "missing_scope"
    members = ("scope",)

    def __init__(self, scope: str) -> None:
        super().__init__(f"this key lacks the {scope!r} scope")
        self.scope = scope


def visible_to(principal: Principal) -> str | None:
    """The producer whose rows the caller sees (None: every producer's, for `admin`)."""
    return None if principal.allows("admin") else principal.producer


def principal_of(settings: Settings, token: str | None) -> Principal:
    """The key's holder, or UnauthenticatedError (no key) / InvalidApiKeyError (a bad one)."""
    if token is None:
        raise UnauthenticatedError()
    # A connection of its own, in autocommit (one round trip), returned before this
    # dependency's thread ends: a request must not hold a pooled connection while it waits
    # for another threadpool slot, or enough concurrent requests deadlock the pool.
    with autocommit(settings) as session:
        principal = authenticate(session, token)
    if principal is None:
        raise InvalidApiKeyError()
    return principal


def require_scope(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds `scope`."""

    def dependency(settings: SettingsDep, credentials: CredentialsDep) -> Principal:
        principal = principal_of(settings, credentials.credentials if credentials else None)
        if not principal.allows(scope):
            raise MissingScopeError(scope)
        return principal

    return dependency
