"""Which processes provision devices on the broker: only those given its admin credential,
and never one without the broker it belongs to."""

from __future__ import annotations

import pytest

from config import Settings, SettingsRefusedError
from tasks.iot.device_accounts import admin_of
from tasks.iot.settings import IotSettings


def with_iot(**iot: object) -> Settings:
    return Settings(iot=IotSettings(**iot))


def test_without_an_admin_password_nothing_is_provisioned() -> None:
    assert admin_of(with_iot(mqtt_url="mqtt://broker:1883", mqtt_password="bridge")) is None


def test_the_admin_client_points_at_the_bridges_broker() -> None:
    admin = admin_of(with_iot(mqtt_url="mqtt://broker.internal:8883", mqtt_admin_password="pw",
                              mqtt_admin_timeout=2.5))  # fmt: skip
    assert admin is not None
    assert (admin.host, admin.port, admin.timeout) == ("broker.internal", 8883, 2.5)


def test_an_admin_password_without_its_broker_is_refused() -> None:
    settings = with_iot(mqtt_admin_password="pw")
    with pytest.raises(SettingsRefusedError, match=r"mqtt_admin_password needs iot\.mqtt_url"):
        settings.section(IotSettings).check(settings)
