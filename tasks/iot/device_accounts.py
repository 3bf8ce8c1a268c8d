"""Each device's MQTT account, kept in step with its credential on the broker the bridge reads.

The broker authenticates a device by its id and its token (the same one HTTP takes), and lets
it publish to its own telemetry topic only. The token exists in plaintext only in the request
that issues it, so creating and rotating provision the broker in that request, before the
commit: a broker that refuses or does not answer makes the request a 503 and nothing is
written (a rotation sets the new password and closes the device's connection, so the old
token stops working on the broker at once). Revoking needs no secret: it commits at once
(the bridge already drops the messages of a revoked device) with a job, in the same
transaction, that deletes the device's client and retries while the broker is away.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from config import Settings
from errors import PermanentError, RetryableError
from tasks.enqueue import enqueue
from tasks.iot.broker_accounts import MqttAdmin, MqttAdminError
from tasks.iot.models import Device
from tasks.iot.schemas import MQTT_REVOKE
from tasks.iot.settings import IotSettings


def admin_of(settings: Settings) -> MqttAdmin | None:
    """An admin client of the devices' broker, or None when no admin credential is set."""
    own = settings.section(IotSettings)
    if own.mqtt_admin_password is None or own.mqtt_url is None:
        return None
    broker = urlsplit(own.mqtt_url)
    return MqttAdmin(
        host=broker.hostname or "",
        port=broker.port or 1883,
        user=own.mqtt_admin_username,
        password=own.mqtt_admin_password.get_secret_value(),
        timeout=own.mqtt_admin_timeout,
    )


def grant(device_id: str, token: str, *, settings: Settings) -> None:
    """Let the device connect with `token` (its only password from now on) and publish to its
    topic; MqttAdminError (503) if the broker refuses or is away. Nothing without an admin."""
    admin = admin_of(settings)
    if admin is not None:
        with admin:
            admin.add_device(device_id, token)


def withdraw_later(session: Session, device_id: str, *, settings: Settings) -> None:
    """Have a worker delete the device's broker client once the caller's transaction commits."""
    if admin_of(settings) is not None:
        enqueue(session, MQTT_REVOKE.name, {"device_id": device_id}, producer="iot",
                settings=settings,
                max_attempts=settings.section(IotSettings).mqtt_revoke_attempts)  # fmt: skip


def withdraw(session: Session, device_id: str, *, settings: Settings) -> dict[str, Any]:
    """Delete the device's broker client, unless it was given a credential since (that rotation
    set its new password on the broker). The device's row stays locked until the caller commits,
    so a rotation waits for the deletion rather than being undone by it."""
    device = session.get(Device, device_id, with_for_update=True)
    if device is not None and device.secret_hash is not None:
        return {"deleted": False, "reason": "rotated since"}
    admin = admin_of(settings)
    if admin is None:
        raise PermanentError("no broker admin credential here (iot.mqtt_admin_password)")
    try:
        with admin:
            admin.remove_device(device_id)
    except MqttAdminError as exc:
        raise RetryableError(str(exc)) from exc
    return {"deleted": True}
