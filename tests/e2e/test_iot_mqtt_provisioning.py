"""The API keeps each device's MQTT account in step with its credential, on a Mosquitto of this
module's own, with the real bridge, relay and worker: a created device publishes with its
token to its own topic only; a rotation refuses the old token at once; a revocation deletes
the device's client (later, if the broker is away then); a creation or rotation the broker
cannot take is a 503 that writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from devstack.mqtt_broker import ADMIN_USER, admin_password
from devstack.processes import Process, wait_until
from store.db import transaction
from tasks.iot import device_accounts, devices
from tasks.iot.mqtt_intake import telemetry_topic
from tests.support.api import auth, count_rows
from tests.support.iot import PROFILE, provision
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.mqtt import Broker, Client, bridge_settings, running_broker, start_bridge

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory.mktemp("mqtt"))


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path, broker: Broker) -> Iterator[IotStack]:
    yield from run_iot_stack(
        settings, logs_dir, name="iot-mqtt-accounts", beat=False, **bridge_settings(broker),
        mqtt_admin_username=ADMIN_USER, mqtt_admin_password=admin_password(broker.data_dir),
    )  # fmt: skip


@pytest.fixture
def bridge(stack: IotStack, logs_dir: Path) -> Iterator[Process]:
    proc = start_bridge(stack.settings, logs_dir)
    yield proc
    proc.stop()
    clean_tables(stack.settings)


@pytest.fixture
def admin(stack: IotStack) -> str:
    return stack.key("iot:admin")


def body(value: float) -> bytes:
    """A JSON batch of one temperature."""
    reading = {"metric": "temp", "value": value, "unit": "Cel", "ts": T0.isoformat()}
    return json.dumps({"readings": [reading]}).encode()


def stored(settings: Settings, device_id: str, count: int) -> None:
    """Wait until `count` readings of the device are stored."""

    def enough() -> bool:
        with transaction(settings) as session:
            found = session.execute(
                text("SELECT count(*) FROM iot_readings WHERE device_id = :d"), {"d": device_id}
            ).scalar_one()
        return int(found) >= count

    wait_until(enough, timeout=60, what=f"{count} readings of {device_id}")


def refused(broker: Broker, device_id: str, password: str) -> bool:
    """True if the broker refuses `device_id` with `password` at CONNECT."""
    client = Client(broker, device_id, password)
    client.close()
    return not client.connected


def credential(base: str, admin: str, device_id: str, method: str) -> httpx.Response:
    """POST (rotate) or DELETE (revoke) the device's credential."""
    url = f"{base}/v1/devices/{device_id}/credential"
    return httpx.request(method, url, headers=auth(admin), timeout=30)


def revoke_jobs(settings: Settings, device_id: str) -> list[tuple[str, int]]:
    """State and attempts of the device's `iot.mqtt_revoke` jobs."""
    with transaction(settings) as session:
        found = session.execute(
            text("SELECT state, attempts FROM jobs WHERE type = 'iot.mqtt_revoke' "
                 "AND payload->>'device_id' = :d"),
            {"d": device_id},
        )  # fmt: skip
        return [(r.state, r.attempts) for r in found]


def test_a_created_device_publishes_with_its_token_to_its_own_topic_only(
    stack: IotStack, broker: Broker, bridge: Process, admin: str
) -> None:
    token = provision(stack.base, admin, device="pv-own")
    provision(stack.base, admin, device="pv-other")
    assert refused(broker, "pv-own", "not-its-token")
    client = Client(broker, "pv-own", token)
    assert client.connected
    assert not client.publish(telemetry_topic("pv-own"), body(21.5)).is_failure
    assert client.publish(telemetry_topic("pv-other"), body(99.0)).getName() == "Not authorized"
    stored(stack.settings, "pv-own", 1)
    client.close()
    with transaction(stack.settings) as session:
        rows = session.execute(text("SELECT device_id, value_num FROM iot_readings")).all()
    assert [tuple(r) for r in rows] == [("pv-own", 21.5)]


def test_a_rotation_refuses_the_old_token_at_once(
    stack: IotStack, broker: Broker, bridge: Process, admin: str
) -> None:
    old = provision(stack.base, admin, device="pv-rot")
    client = Client(broker, "pv-rot", old)
    assert client.connected
    rotated = credential(stack.base, admin, "pv-rot", "POST")
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    assert client.disconnected.wait(10)  # its session was closed by the rotation
    client.close()
    assert refused(broker, "pv-rot", old)
    fresh = Client(broker, "pv-rot", new)
    assert fresh.connected
    assert not fresh.publish(telemetry_topic("pv-rot"), body(3.0)).is_failure
    stored(stack.settings, "pv-rot", 1)
    fresh.close()


def test_a_revoked_device_is_disconnected_and_refused(
    stack: IotStack, broker: Broker, bridge: Process, admin: str
) -> None:
    token = provision(stack.base, admin, device="pv-rev")
    client = Client(broker, "pv-rev", token)
    assert client.connected
    assert credential(stack.base, admin, "pv-rev", "DELETE").status_code == 204
    wait_until(lambda: revoke_jobs(stack.settings, "pv-rev") == [("succeeded", 1)],
               timeout=60, what="the revoke job to succeed")  # fmt: skip
    assert client.disconnected.wait(10)
    client.close()
    assert refused(broker, "pv-rev", token)


def test_a_revocation_while_the_broker_is_away_is_done_when_it_returns(
    stack: IotStack, broker: Broker, bridge: Process, admin: str
) -> None:
    token = provision(stack.base, admin, device="pv-away")
    broker.stop()
    try:
        answer = credential(stack.base, admin, "pv-away", "DELETE")
        assert answer.status_code == 204, answer.text  # the database is the authority
        wait_until(lambda: [s for s, a in revoke_jobs(stack.settings, "pv-away") if a >= 1]
                   == ["retrying"], timeout=60, what="the revoke job to retry")  # fmt: skip
    finally:
        broker.start()
    wait_until(lambda: [s for s, _ in revoke_jobs(stack.settings, "pv-away")] == ["succeeded"],
               timeout=90, what="the revoke job to succeed")  # fmt: skip
    assert refused(broker, "pv-away", token)


def test_creating_or_rotating_while_the_broker_is_away_is_a_503_that_writes_nothing(
    stack: IotStack, broker: Broker, bridge: Process, admin: str
) -> None:
    token = provision(stack.base, admin, device="pv-kept")
    with transaction(stack.settings) as session:
        before = session.execute(text("SELECT credential_id FROM iot_devices")).scalar_one()
    broker.stop()
    try:
        made = httpx.post(f"{stack.base}/v1/devices", json={"id": "pv-new", "profile": "thermo"},
                          headers=auth(admin), timeout=30)  # fmt: skip
        rotated = credential(stack.base, admin, "pv-kept", "POST")
    finally:
        broker.start()
    for answer in (made, rotated):
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["code"] == "mqtt_admin_failed"
    assert count_rows(stack.settings, "iot_devices") == 1
    with transaction(stack.settings) as session:
        after = session.execute(text("SELECT credential_id FROM iot_devices")).scalar_one()
    assert after == before
    client = Client(broker, "pv-kept", token)  # the broker kept the device's account as it was
    assert client.connected
    client.close()


def test_a_revocation_followed_by_a_rotation_keeps_the_new_account(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    with transaction(stack.settings) as session:
        devices.create_profile(session, profile_id=PROFILE["id"], metrics=PROFILE["metrics"],
                               future_policy="refuse", late_window=None,
                               future_skew=None)  # fmt: skip
        devices.create_device(session, device_id="pv-back", profile_id=PROFILE["id"])
        devices.revoke(session, "pv-back")
        token = devices.rotate(session, "pv-back")
        device_accounts.grant("pv-back", token, settings=stack.settings)
    with transaction(stack.settings) as session:  # the revocation's job, run late
        outcome: dict[str, Any] = device_accounts.withdraw(
            session, "pv-back", settings=stack.settings
        )
    assert outcome == {"deleted": False, "reason": "rotated since"}
    client = Client(broker, "pv-back", token)
    assert client.connected
    client.close()
