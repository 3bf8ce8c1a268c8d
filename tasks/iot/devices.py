"""The device registry: profiles and devices, each device with a credential of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from errors import ConflictError, InvalidFieldError, NotFoundError
from tasks.iot import credentials
from tasks.iot.models import Device, Profile


def create_profile(
    session: Session,
    *,
    profile_id: str,
    metrics: dict[str, Any],
    future_policy: str,
    late_window: float | None,
    future_skew: float | None,
) -> Profile:
    """Declare a profile; its id must be new."""
    if session.get(Profile, profile_id) is not None:
        raise ConflictError(f"profile {profile_id!r} exists already")
    profile = Profile(
        id=profile_id,
        metrics=metrics,
        future_policy=future_policy,
        late_window=late_window,
        future_skew=future_skew,
        created_at=datetime.now(UTC),
    )
    session.add(profile)
    session.flush()
    return profile


def get_profile(session: Session, profile_id: str) -> Profile:
    """The profile, or 404."""
    profile = session.get(Profile, profile_id)
    if profile is None:
        raise NotFoundError(f"no device profile {profile_id!r}")
    return profile


def create_device(session: Session, *, device_id: str, profile_id: str) -> tuple[Device, str]:
    """Register a device of a profile; returns it and its token (shown this once)."""
    if session.get(Profile, profile_id) is None:
        raise InvalidFieldError(f"no device profile {profile_id!r}", field="profile")
    if session.get(Device, device_id) is not None:
        raise ConflictError(f"device {device_id!r} exists already")
    device = Device(id=device_id, profile_id=profile_id, created_at=datetime.now(UTC))
    token = credentials.issue(device)
    session.add(device)
    try:
        session.flush()
    except IntegrityError as exc:  # registered concurrently
        raise ConflictError(f"device {device_id!r} exists already") from exc
    return device, token


def get_device(session: Session, device_id: str, *, for_update: bool = False) -> Device:
    """The device, or 404."""
    device = session.get(Device, device_id, with_for_update=for_update)
    if device is None:
        raise NotFoundError(f"no device {device_id!r}")
    return device


def rotate(session: Session, device_id: str) -> str:
    """Replace the device's credential: the old token stops working when this commits."""
    return credentials.issue(get_device(session, device_id, for_update=True))


def revoke(session: Session, device_id: str) -> None:
    """Take the device's credential away; it sends nothing until rotated again."""
    credentials.revoke(get_device(session, device_id, for_update=True))


def set_maintenance(session: Session, device_id: str, *, on: bool) -> Device:
    """Put the device under maintenance (silence raises no offline alert) or take it out."""
    device = get_device(session, device_id, for_update=True)
    device.maintenance = on
    return device
