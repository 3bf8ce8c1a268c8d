"""The dev Mosquitto with per-device credentials: a real broker on a free port of its own, real
paho clients. A device publishes to its own topic only, a wrong password or an unknown device
cannot connect, and a removed device is disconnected at once and refused after."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.mqtt_broker import listening, mosquitto_argv
from devstack.redis_server import free_loopback_port
from errors import InvalidFieldError
from tasks.iot.broker_accounts import check_device_id
from tasks.iot.mqtt_intake import ALL_TELEMETRY, telemetry_topic
from tests.support.mqtt import (
    BRIDGE_PASSWORD,
    BRIDGE_USER,
    DEADLINE,
    Broker,
    Client,
    running_broker,
    wait_for,
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory.mktemp("mqtt"))


@pytest.fixture
def reader(broker: Broker) -> Iterator[Client]:
    client = Client(broker, BRIDGE_USER, BRIDGE_PASSWORD)
    client.paho.subscribe(ALL_TELEMETRY, qos=1)
    wait_for("SUBACK", client.subscribed.is_set)
    yield client
    client.close()


@pytest.fixture
def device(broker: Broker, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"dev-{request.node.name[-40:].replace('[', '-').replace(']', '')}"
    with broker.admin() as admin:
        admin.add_device(name, "right-password")
    yield name
    with broker.admin() as admin:
        admin.remove_device(name)


def test_a_provisioned_device_publishes_to_its_own_topic(
    broker: Broker, reader: Client, device: str
) -> None:
    client = Client(broker, device, "right-password")
    assert client.connected
    assert not client.publish(telemetry_topic(device), b"temp value=21.5").is_failure
    wait_for(
        "the reading", lambda: (telemetry_topic(device), b"temp value=21.5") in reader.received
    )
    client.close()


def test_a_device_cannot_publish_to_another_devices_topic(
    broker: Broker, reader: Client, device: str
) -> None:
    client = Client(broker, device, "right-password")
    for topic in (telemetry_topic("someone-else"), f"devices/{device}/other", "devices/x"):
        assert client.publish(topic, b"forged").getName() == "Not authorized"
    client.publish(telemetry_topic(device), b"marker")  # the same client's messages keep order
    wait_for("the marker", lambda: (telemetry_topic(device), b"marker") in reader.received)
    assert all(payload != b"forged" for _, payload in reader.received)
    client.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [("{device}", "wrong-password"), ("{device}", ""), ("no-such-device", "right-password")],
)
def test_a_wrong_password_or_an_unknown_device_cannot_connect(
    broker: Broker, device: str, username: str, password: str
) -> None:
    client = Client(broker, username.format(device=device), password)
    assert client.connack is not None and client.connack.is_failure
    client.close()


def test_a_removed_device_is_disconnected_at_once_and_refused_after(
    broker: Broker, device: str
) -> None:
    client = Client(broker, device, "right-password")
    assert client.connected
    with broker.admin() as admin:
        admin.remove_device(device)
        admin.remove_device(device)  # removing again is no error
    wait_for("the broker to drop the device", client.disconnected.is_set)
    client.close()
    again = Client(broker, device, "right-password")
    assert again.connack is not None and again.connack.is_failure
    again.close()


def test_adding_a_device_again_rotates_its_password_at_once(broker: Broker, device: str) -> None:
    connected = Client(broker, device, "right-password")
    assert connected.connected
    with broker.admin() as admin:
        admin.add_device(device, "new-password")
    wait_for("the old session to be dropped", connected.disconnected.is_set)
    connected.close()
    old, new = Client(broker, device, "right-password"), Client(broker, device, "new-password")
    assert (old.connected, new.connected) == (False, True)
    old.close()
    new.close()


def test_devices_survive_a_broker_restart(broker: Broker, device: str) -> None:
    broker.stop()
    broker.start()
    client = Client(broker, device, "right-password")
    assert client.connected
    assert not client.publish(telemetry_topic(device), b"after restart").is_failure
    client.close()


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 129, "a\x00"])
def test_a_device_id_that_cannot_be_a_topic_level_is_refused(bad: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        check_device_id(bad)
    assert caught.value.field == "device_id"


# A stand-in for `switchyard dev`: starts the broker as the stack does, prints its pid, idles.
SUPERVISOR = """
import os, subprocess, sys, time
from devstack.children import PARENT_ENV
child = subprocess.Popen(sys.argv[1:], env={**os.environ, PARENT_ENV: str(os.getpid())},
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_the_broker_dies_with_a_supervisor_killed_outright(tmp_path: Path) -> None:
    port = free_loopback_port()
    argv = mosquitto_argv(tmp_path / "mqtt", port=port)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, *argv], stdout=subprocess.PIPE, text=True
    )
    assert supervisor.stdout is not None
    broker_pid = int(supervisor.stdout.readline())
    try:
        wait_for("mosquitto to listen", lambda: listening(port))
        supervisor.kill()  # SIGKILL: no chance to stop its children
        supervisor.wait(timeout=DEADLINE)
        wait_for("mosquitto to exit", lambda: not listening(port))
    finally:
        supervisor.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker_pid, signal.SIGKILL)
