"""HTTP plumbing of the IoT routes: device-token authentication and bounded bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from errors import InvalidFieldError, SwitchyardError, UnauthenticatedError
from store.db import autocommit
from tasks.iot import credentials
from tasks.web.auth import CredentialsDep, MissingScopeError, principal_of
from tasks.web.deps import SettingsDep

READ_SCOPE = "iot:read"
ADMIN_SCOPE = "iot:admin"


class InvalidDeviceTokenError(UnauthenticatedError):
    """A device token that is malformed, unknown, rotated away or revoked."""

    code = "invalid_device_token"

    def __init__(self) -> None:
        super().__init__("the device token is unknown, rotated or revoked")


class BatchTooLargeError(SwitchyardError):
    """The body exceeds the largest batch accepted."""

    status, code, field = 413, "batch_too_large", "body"


def device_of_request(settings: SettingsDep, creds: CredentialsDep) -> str:
    """The id of the device whose token the request carries (401 otherwise)."""
    if creds is None:
        raise UnauthenticatedError("send `Authorization: Bearer <device token>`")
    with autocommit(settings) as session:
        device = credentials.device_of(session, creds.credentials)
    if device is None:
        raise InvalidDeviceTokenError()
    return device


def device_or_reader(settings: SettingsDep, creds: CredentialsDep) -> str | None:
    """A device token (its own things only: the device id) or a key with `iot:read` (None)."""
    token = creds.credentials if creds else None
    if token is not None and token.startswith(f"{credentials.TOKEN_PREFIX}_"):
        return device_of_request(settings, creds)
    principal = principal_of(settings, token)
    if not principal.allows(READ_SCOPE):
        raise MissingScopeError(READ_SCOPE)
    return None


DeviceDep = Annotated[str, Depends(device_of_request)]
DeviceOrReaderDep = Annotated[str | None, Depends(device_or_reader)]


async def bounded_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BatchTooLargeError(f"the batch is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BatchTooLargeError(f"the batch is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidFieldError("the batch is empty", field="body")
    return body
