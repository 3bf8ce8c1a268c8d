"""Device shadows: the state a device last reported and the state an operator desires, with
one version counting the writes of either, for optimistic concurrency. A writer may name the
version it read, as `If-Match: "<version>"` (412 when it moved on) or as `version` in the body
(409); a write without either applies whatever came before it. A shadow never written reads
as empty, version 0."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from errors import ConflictError, SwitchyardError
from tasks.iot.models import Shadow
from tasks.web.fields import JsonObject

Part = Literal["reported", "desired"]
MAX_STATE_BYTES = 65_536


def _bounded(state: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(state)) > MAX_STATE_BYTES:
        raise ValueError(f"larger than {MAX_STATE_BYTES} bytes as JSON")
    return state


class PreconditionFailedError(SwitchyardError):
    """`If-Match` names a version the shadow has moved on from."""

    status, code, field = 412, "precondition_failed", "If-Match"


class VersionConflictError(ConflictError):
    """The body's `version` is not the shadow's."""

    code, field = "version_conflict", "version"


class ShadowWrite(BaseModel):
    """`PUT /v1/devices/{id}/shadow/{reported|desired}`: the whole new state of that part."""

    model_config = ConfigDict(extra="forbid", strict=True)
    state: Annotated[JsonObject, AfterValidator(_bounded)]
    version: Annotated[int, Field(ge=0)] | None = None


class ShadowView(BaseModel):
    """A shadow, and `delta`: the desired members the reported state does not match yet."""

    device: str
    reported: dict[str, Any]
    desired: dict[str, Any]
    delta: dict[str, Any]
    version: int
    reported_at: datetime | None
    desired_at: datetime | None

    @classmethod
    def of(cls, device: str, row: Shadow | None) -> ShadowView:
        """The view of a row (or of a shadow never written)."""
        reported = row.reported if row else {}
        desired = row.desired if row else {}
        return cls(
            device=device,
            reported=reported,
            desired=desired,
            delta={k: v for k, v in desired.items() if reported.get(k, object()) != v},
            version=row.version if row else 0,
            reported_at=row.reported_at if row else None,
            desired_at=row.desired_at if row else None,
        )

    @property
    def etag(self) -> str:
        """The version as a strong entity tag."""
        return f'"{self.version}"'


def _matches(if_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    return "*" in tags or etag in tags


def read(session: Session, device: str) -> ShadowView:
    """The device's shadow."""
    return ShadowView.of(device, session.get(Shadow, device))


def write(
    session: Session,
    device: str,
    part: Part,
    body: ShadowWrite,
    *,
    if_match: str | None,
    now: datetime,
) -> ShadowView:
    """Replace one part of the shadow, if the writer's version (if any) is still current."""
    session.execute(insert(Shadow).values(device_id=device).on_conflict_do_nothing())
    row = session.get_one(Shadow, device, with_for_update=True, populate_existing=True)
    current = ShadowView.of(device, row)
    if if_match is not None and not _matches(if_match, current.etag):
        raise PreconditionFailedError(f"the shadow is at version {row.version}, not {if_match}")
    if body.version is not None and body.version != row.version:
        raise VersionConflictError(f"the shadow is at version {row.version}, not {body.version}")
    setattr(row, part, body.state)
    setattr(row, f"{part}_at", now)
    row.version += 1
    session.flush()
    return ShadowView.of(device, row)
