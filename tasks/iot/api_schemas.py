"""The IoT API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from tasks.iot.models import Batch, Device, Latest, Profile
from tasks.web.fields import Text

# Ids travel in paths and topics: letters, digits and `-_.:`, no spaces.
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
# What every format accepts as a metric name: 1 to 128 printable characters.
MetricName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f-\x9f]{1,128}$")]
Bound = Annotated[float, Field(allow_inf_nan=False)]
# Request bodies are strict (`strict=True` in each model's config, as the payments API does):
# only JSON true/false is a boolean, only an integer an integer, only a string a string; a
# number field takes integers too. Telemetry bodies are not these models: their formats parse
# readings themselves (`tasks/iot/formats/`).


class MetricSpec(BaseModel):
    """One metric a profile declares."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["number", "string", "boolean"] = "number"
    unit: Annotated[Text, Field(min_length=1, max_length=50)] | None = None
    min: Bound | None = None
    max: Bound | None = None
    interval: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = None  # seconds

    @field_validator("min", "max")
    @classmethod
    def _range(cls, bound: float | None, info: ValidationInfo) -> float | None:
        """A bound of a number only; `max` not below `min` (the error names the bound)."""
        if bound is None:
            return bound
        if info.data.get("type", "number") != "number":
            raise ValueError("only a number has a range")
        low = info.data.get("min")
        if info.field_name == "max" and low is not None and bound < low:
            raise ValueError(f"max must not be below min ({low})")
        return bound


class ProfileCreate(BaseModel):
    """`POST /v1/device-profiles`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: Slug
    metrics: Annotated[dict[MetricName, MetricSpec], Field(min_length=1, max_length=1_000)]
    future_policy: Literal["refuse", "clamp"] = "refuse"
    late_window: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = None
    future_skew: Annotated[float, Field(ge=0, le=86_400)] | None = None


class ProfileView(BaseModel):
    """A profile."""

    id: str
    metrics: dict[str, Any]
    future_policy: str
    late_window: float | None
    future_skew: float | None
    created_at: datetime

    @classmethod
    def of(cls, p: Profile) -> ProfileView:
        """The view of a row."""
        return cls(
            id=p.id,
            metrics=p.metrics,
            future_policy=p.future_policy,
            late_window=p.late_window,
            future_skew=p.future_skew,
            created_at=p.created_at,
        )


class DeviceCreate(BaseModel):
    """`POST /v1/devices`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: Slug
    profile: Slug


class DevicePatch(BaseModel):
    """`PATCH /v1/devices/{id}`: what an operator may change of a device."""

    model_config = ConfigDict(extra="forbid", strict=True)
    maintenance: bool


class DeviceView(BaseModel):
    """A device (never its secret)."""

    id: str
    profile: str
    credential: Literal["active", "revoked"]
    credential_at: datetime | None
    created_at: datetime
    maintenance: bool

    @classmethod
    def of(cls, d: Device) -> DeviceView:
        """The view of a row."""
        return cls(
            id=d.id,
            profile=d.profile_id,
            credential="revoked" if d.credential_id is None else "active",
            credential_at=d.credential_at,
            created_at=d.created_at,
            maintenance=d.maintenance,
        )


class Credential(BaseModel):
    """A device's new token: shown once, stored only as a hash."""

    device: DeviceView
    token: str


class BatchView(BaseModel):
    """A batch's status and refusals."""

    id: str
    device: str
    status: str
    received_at: datetime
    stored_at: datetime | None
    readings: int
    stored: int
    duplicates: int
    conflicts: int
    clamped: int
    refusals: list[dict[str, Any]]
    refusals_total: int  # more than `refusals` holds in a listing, which shows the first ones
    job_id: str

    @classmethod
    def of(
        cls,
        b: Batch,
        *,
        refusals: list[dict[str, Any]] | None = None,
        refusals_total: int | None = None,
    ) -> BatchView:
        """The view of a row, with all its refusals unless given the first ones and the count."""
        shown = b.refusals if refusals is None else refusals
        return cls(
            id=str(b.id),
            device=b.device_id,
            status=b.status,
            received_at=b.received_at,
            stored_at=b.stored_at,
            readings=b.readings,
            stored=b.stored,
            duplicates=b.duplicates,
            conflicts=b.conflicts,
            clamped=b.clamped,
            refusals=shown,
            refusals_total=len(shown) if refusals_total is None else refusals_total,
            job_id=str(b.job_id),
        )


def value_of(num: float | None, text: str | None, flag: bool | None) -> float | str | bool:
    """The one value a row's three value columns hold."""
    return flag if flag is not None else text if text is not None else float(num or 0.0)


class ReadingView(BaseModel):
    """One stored reading: event time and receipt time."""

    metric: str
    ts: datetime
    received_at: datetime
    value: float | str | bool
    unit: str | None


class LatestView(ReadingView):
    """The newest reading of one metric."""

    @classmethod
    def of(cls, row: Latest) -> LatestView:
        """The view of a row."""
        return cls(
            metric=row.metric,
            ts=row.ts,
            received_at=row.received_at,
            value=value_of(row.value_num, row.value_text, row.value_bool),
            unit=row.unit,
        )


class ConflictView(BaseModel):
    """A conflicting offer: the stored reading and the value that was offered for its key."""

    id: int
    metric: str
    ts: datetime
    batch_id: str
    index: int
    stored: dict[str, Any]
    offered: dict[str, Any]
    at: datetime
