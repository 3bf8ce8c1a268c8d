"""The MQTT bridge killed with SIGKILL every few seconds for about a minute while a device
publishes QoS 1 readings: every reading is stored exactly once, none is lost."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import wait_until
from store.db import transaction
from tasks.iot.mqtt_intake import telemetry_topic
from tests.support.api import count_rows
from tests.support.iot import provision
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.mqtt import Broker, Client, bridge_settings, running_broker, start_bridge

pytestmark = pytest.mark.chaos

DEVICE = "mq-chaos"
PER_MESSAGE = 10
RATE = 10.0  # messages a second
KILL_FOR = 55.0  # seconds of killing


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory.mktemp("mqtt"))


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path, broker: Broker) -> Iterator[IotStack]:
    yield from run_iot_stack(settings, logs_dir, name="iot-mqtt-chaos", beat=False,
                             **bridge_settings(broker))  # fmt: skip
    clean_tables(settings)  # the run's database is shared with the tests that follow


def _unstored(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(
            session.scalar(text("SELECT count(*) FROM iot_batches WHERE status = 'received'")) or 0
        )


class Publisher(threading.Thread):
    """Publishes message after message of PER_MESSAGE readings each until stopped."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True)
        self.client, self.stop, self.sent = client, threading.Event(), 0
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)

    def run(self) -> None:
        while not self.stop.wait(1 / RATE):
            start = self.sent * PER_MESSAGE
            readings = [
                {"metric": "temp", "value": float(n % 100),
                 "ts": (self.t0 + timedelta(milliseconds=n)).isoformat()}
                for n in range(start, start + PER_MESSAGE)
            ]  # fmt: skip
            self.client.paho.publish(
                telemetry_topic(DEVICE), json.dumps({"readings": readings}), qos=1
            )
            self.sent += 1


@pytest.mark.timeout(300)  # a minute of killing, then the backlog drains
def test_killing_the_bridge_under_load_loses_nothing_and_stores_nothing_twice(
    stack: IotStack, broker: Broker, logs_dir: Path
) -> None:
    provision(stack.base, stack.key("iot:admin"), device=DEVICE)
    with broker.admin() as admin:
        admin.add_device(DEVICE, "chaos-password")
    client = Client(broker, DEVICE, "chaos-password")
    doomed = start_bridge(stack.settings, logs_dir, name="first")  # the session subscribes
    publisher = Publisher(client)
    publisher.start()
    kills, until = 0, time.monotonic() + KILL_FOR
    while time.monotonic() < until:
        if kills:
            doomed = start_bridge(stack.settings, logs_dir, name=f"doomed-{kills}")
        time.sleep(random.uniform(0.5, 3.0))
        doomed.kill()
        doomed.popen.wait(10)
        kills += 1
    publisher.stop.set()
    publisher.join(10)
    wait_until(lambda: len(client.pubacks) == publisher.sent, what="the broker's PUBACKs")
    survivor = start_bridge(stack.settings, logs_dir, name="survivor")
    expected = publisher.sent * PER_MESSAGE
    try:
        wait_until(
            lambda: count_rows(stack.settings, "iot_readings") >= expected,
            timeout=120,
            what=f"{expected} readings",
        )
        wait_until(lambda: not _unstored(stack.settings), timeout=60, what="every batch stored")
    finally:
        survivor.stop()
        client.close()
    with transaction(stack.settings) as session:
        ts = session.scalars(
            text("SELECT ts FROM iot_readings WHERE device_id = :d"), {"d": DEVICE}
        ).all()
    assert kills >= 8 and publisher.sent >= 400
    assert len(ts) == len(set(ts)) == expected  # every reading once, none lost
    assert sorted(ts) == [publisher.t0 + timedelta(milliseconds=n) for n in range(expected)]
    batches = count_rows(stack.settings, "iot_batches")
    assert batches >= publisher.sent, "a message became no batch at all"
