"""`/v1/devices/{id}/shadow`: read by `iot:read` or the device itself; the desired state set
with `iot:admin`, the reported state by the device's own token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from errors import ForbiddenError, NotFoundError
from store.api_keys import Principal
from tasks.iot import devices, shadow
from tasks.iot.shadow import ShadowView, ShadowWrite
from tasks.iot.web import ADMIN_SCOPE, DeviceDep, DeviceOrReaderDep
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep
from tasks.web.routing import StrictRoute

router = APIRouter(tags=["iot"], route_class=StrictRoute)
Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


def _answer(response: Response, view: ShadowView) -> ShadowView:
    response.headers["ETag"] = view.etag
    return view


@router.get("/v1/devices/{device_id}/shadow")
def read_shadow(
    device_id: str, session: SessionDep, caller: DeviceOrReaderDep, response: Response
) -> ShadowView:
    """The shadow (its version as `ETag`); a device token sees its own device's only."""
    if caller is not None and caller != device_id:
        raise NotFoundError(f"no device {device_id!r}")
    devices.get_device(session, device_id)
    return _answer(response, shadow.read(session, device_id))


@router.put("/v1/devices/{device_id}/shadow/desired")
def set_desired(
    device_id: str,
    body: ShadowWrite,
    session: SessionDep,
    _: Admin,
    response: Response,
    if_match: IfMatch = None,
) -> ShadowView:
    """Replace the desired state; with `If-Match` (412) or `version` (409), only if current."""
    devices.get_device(session, device_id)
    view = shadow.write(
        session, device_id, "desired", body, if_match=if_match, now=datetime.now(UTC)
    )
    session.commit()
    return _answer(response, view)


@router.put("/v1/devices/{device_id}/shadow/reported")
def report(
    device_id: str,
    body: ShadowWrite,
    session: SessionDep,
    device: DeviceDep,
    response: Response,
    if_match: IfMatch = None,
) -> ShadowView:
    """The device reports its state (its own token only); the same version checks."""
    if device != device_id:
        raise ForbiddenError("a device token reports for its own device only")
    view = shadow.write(
        session, device_id, "reported", body, if_match=if_match, now=datetime.now(UTC)
    )
    session.commit()
    return _answer(response, view)
