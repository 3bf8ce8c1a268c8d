"""Device credentials: one per device, shown once, stored as a hash, replaced or revoked at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasks.iot.models import Device

TOKEN_PREFIX = "dv"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(device: Device) -> str:
    """Give the device a new credential (the old one stops working) and return its token."""
    device.credential_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    device.secret_hash = _hash(secret)
    device.credential_at = datetime.now(UTC)
    return f"{TOKEN_PREFIX}_{device.credential_id}_{secret}"


def revoke(device: Device) -> None:
    """Take the device's credential away: no token of it works any more."""
    device.credential_id = device.secret_hash = device.credential_at = None


def device_of(session: Session, token: str) -> str | None:
    """The id of the device whose live credential `token` is, else None."""
    prefix, _, rest = token.partition("_")
    credential_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not credential_id or not secret or len(credential_id) > 32:
        return None
    row = session.execute(
        select(Device.id, Device.secret_hash).where(Device.credential_id == credential_id)
    ).first()
    if row is None or row.secret_hash is None:
        return None
    return row.id if hmac.compare_digest(row.secret_hash, _hash(secret)) else None
