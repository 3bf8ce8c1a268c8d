"""`/v1/device-profiles`, `/v1/devices` and `/v1/telemetry`: the registry and ingestion
(queries of the readings: `query_routes.py`)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from config import Settings
from errors import NotFoundError
from store.api_keys import Principal
from store.db import transaction
from tasks.iot import alert_rules, device_accounts, devices, queries, service
from tasks.iot.alert_rules import AlertRuleCreate, AlertRuleView
from tasks.iot.api_schemas import (
    BatchView,
    ConflictView,
    Credential,
    DeviceCreate,
    DevicePatch,
    DeviceView,
    ProfileCreate,
    ProfileView,
)
from tasks.iot.backpressure import LagGauge, check_rate
from tasks.iot.formats.line_protocol import Precision
from tasks.iot.models import Batch, Device, Profile
from tasks.iot.parsing import batch_type, extra_parsers, parser_for
from tasks.iot.settings import IotSettings
from tasks.iot.web import ADMIN_SCOPE, READ_SCOPE, DeviceDep, DeviceOrReaderDep, bounded_body
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.paging import Page
from tasks.web.routing import StrictRoute

router = APIRouter(tags=["iot"], route_class=StrictRoute)
Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]
Reader = Annotated[Principal, Depends(require_scope(READ_SCOPE))]
LAG = LagGauge()


@router.post("/v1/device-profiles", status_code=status.HTTP_201_CREATED)
def create_profile(body: ProfileCreate, session: SessionDep, _: Admin) -> ProfileView:
    """Declare a device profile: its metrics and time policy."""
    profile = devices.create_profile(
        session,
        profile_id=body.id,
        metrics={name: spec.model_dump(exclude_none=True) for name, spec in body.metrics.items()},
        future_policy=body.future_policy,
        late_window=body.late_window,
        future_skew=body.future_skew,
    )
    session.commit()
    return ProfileView.of(profile)


@router.get("/v1/device-profiles")
def list_profiles(session: SessionDep, _: Reader) -> list[ProfileView]:
    """Every profile."""
    return [ProfileView.of(p) for p in session.scalars(select(Profile).order_by(Profile.id))]


@router.get("/v1/device-profiles/{profile_id}")
def read_profile(profile_id: str, session: SessionDep, _: Reader) -> ProfileView:
    """One profile."""
    return ProfileView.of(devices.get_profile(session, profile_id))


@router.post("/v1/devices", status_code=status.HTTP_201_CREATED)
def create_device(
    body: DeviceCreate, session: SessionDep, settings: SettingsDep, _: Admin
) -> Credential:
    """Register a device (and its MQTT client, when the API provisions the broker); the answer
    holds its token, which is never shown again."""
    device, token = devices.create_device(session, device_id=body.id, profile_id=body.profile)
    device_accounts.grant(device.id, token, settings=settings)
    session.commit()
    return Credential(device=DeviceView.of(device), token=token)


@router.post("/v1/alert-rules", status_code=status.HTTP_201_CREATED)
def create_alert_rule(
    body: AlertRuleCreate, session: SessionDep, settings: SettingsDep, _: Admin
) -> AlertRuleView:
    """A threshold rule (hysteresis; N consecutive readings or a duration), or an offline rule."""
    rule = alert_rules.create(session, body, settings=settings)
    session.commit()
    return AlertRuleView.of(rule)


@router.get("/v1/devices/{device_id}/alerts")
def alert_events(
    device_id: str,
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[dict[str, Any]]:
    """The device's alert transitions, newest first, each with its notification."""
    devices.get_device(session, device_id)
    return queries.alert_events(session, device_id, limit=limit)


@router.get("/v1/devices")
def list_devices(session: SessionDep, _: Reader) -> list[DeviceView]:
    """Every device."""
    return [DeviceView.of(d) for d in session.scalars(select(Device).order_by(Device.id))]


@router.get("/v1/devices/{device_id}")
def read_device(device_id: str, session: SessionDep, _: Reader) -> DeviceView:
    """One device."""
    return DeviceView.of(devices.get_device(session, device_id))


@router.patch("/v1/devices/{device_id}")
def update_device(device_id: str, body: DevicePatch, session: SessionDep, _: Admin) -> DeviceView:
    """Change a device: its maintenance flag (under maintenance, silence raises no alert)."""
    device = devices.set_maintenance(session, device_id, on=body.maintenance)
    session.commit()
    return DeviceView.of(device)


@router.post("/v1/devices/{device_id}/credential", status_code=status.HTTP_201_CREATED)
def rotate_credential(
    device_id: str, session: SessionDep, settings: SettingsDep, _: Admin
) -> Credential:
    """Issue the device a new token; the old one stops working at once, over MQTT too."""
    token = devices.rotate(session, device_id)
    device_accounts.grant(device_id, token, settings=settings)
    session.commit()
    return Credential(device=DeviceView.of(devices.get_device(session, device_id)), token=token)


@router.delete("/v1/devices/{device_id}/credential", status_code=status.HTTP_204_NO_CONTENT)
def revoke_credential(
    device_id: str, session: SessionDep, settings: SettingsDep, _: Admin
) -> Response:
    """Revoke the device's token at once; a worker then deletes its MQTT client."""
    devices.revoke(session, device_id)
    device_accounts.withdraw_later(session, device_id, settings=settings)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/devices/{device_id}/conflicts")
def conflicts(
    device_id: str,
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[ConflictView]:
    """Offers of a stored key with another value: counted, kept here, not stored."""
    devices.get_device(session, device_id)
    return queries.conflicts(session, device_id, limit=limit)


def _receive(settings: Settings, device: str, content_type: str, body: bytes) -> Batch:
    with transaction(settings) as session:
        return service.receive(
            session,
            device_id=device,
            content_type=content_type,
            body=body,
            received_at=datetime.now(UTC),
            settings=settings,
        )


@router.post("/v1/telemetry", status_code=status.HTTP_202_ACCEPTED)
async def send(
    request: Request,
    device: DeviceDep,
    settings: SettingsDep,
    precision: Annotated[
        Precision | None,
        Query(description="The unit of line-protocol timestamps (text/plain); default ns."),
    ] = None,
) -> dict[str, Any]:
    """Accept a batch of the token's device: it is durable when this answers."""
    content_type = batch_type(request.headers.get("content-type"), precision=precision)
    check_rate(device, settings=settings, now=time.time())
    await run_in_threadpool(LAG.check, settings)
    parser_for(content_type, extra=extra_parsers(settings))
    body = await bounded_body(request, limit=settings.section(IotSettings).max_batch_bytes)
    batch = await run_in_threadpool(_receive, settings, device, content_type, body)
    return {
        "id": str(batch.id),
        "status": batch.status,
        "links": {"self": f"/v1/telemetry/batches/{batch.id}"},
    }


@router.get("/v1/telemetry/batches")
def list_batches(
    session: SessionDep,
    device: DeviceOrReaderDep,
    of: Annotated[
        str | None, Query(alias="device", max_length=100, description="One device's only.")
    ] = None,
    status: Annotated[Literal["received", "stored", "refused"] | None, Query()] = None,
    with_refusals: Annotated[
        bool, Query(description="Only batches that refused something (a reading, or all).")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[BatchView]:
    """Batches newest first — every device's to a key with `iot:read`, its own to a device —
    e.g. `?with_refusals=true` for what was refused, over MQTT too. Each shows its first
    20 refusals and `refusals_total`; the batch's own GET shows them all."""
    if device is not None and of not in (None, device):
        raise NotFoundError(f"no device {of}")  # a device sees its own batches only
    return queries.batches(
        session,
        device=device if device is not None else of,
        status=status,
        with_refusals=with_refusals,
        cursor=cursor,
        limit=limit,
    )


@router.get("/v1/telemetry/batches/{batch_id}")
def read_batch(batch_id: uuid.UUID, session: SessionDep, device: DeviceOrReaderDep) -> BatchView:
    """A batch's status, counts and refusals (a device sees its own batches only)."""
    batch = session.get(Batch, batch_id)
    if batch is None or (device is not None and batch.device_id != device):
        raise NotFoundError(f"no batch {batch_id}")
    return BatchView.of(batch)
