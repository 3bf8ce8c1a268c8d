"""`switchyard iot simulate` against real processes: what it says it sent is what the store
holds (rows = unique keys; duplicates, conflicts and refused future readings as counted), it
waits out 429s rather than drop a batch, and over MQTT each device publishes its batches with
QoS 1 to its own topic with its own credentials."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from config import Settings
from devstack.mqtt_broker import ADMIN_USER, admin_password
from devstack.processes import settings_env, switchyard, wait_until
from store.db import transaction
from tasks.iot.mqtt_intake import ALL_TELEMETRY, telemetry_topic
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.mqtt import BRIDGE_PASSWORD, BRIDGE_USER, Broker, running_broker

MIX = ["--duplicates", "0.2", "--conflicts", "0.25", "--late", "0.1", "--future", "0.02"]
TOTALS = text("""
SELECT count(*) FILTER (WHERE status = 'stored') AS stored_batches,
  coalesce(sum(duplicates), 0) AS duplicates, coalesce(sum(conflicts), 0) AS conflicts,
  coalesce(sum(jsonb_array_length(refusals)), 0) AS refused,
  count(*) FILTER (WHERE refusals @> '[{"code": "in_future"}]') AS with_future
FROM iot_batches WHERE id = ANY(CAST(:ids AS uuid[]))
""")
ROWS = text("""
SELECT count(*) AS rows, count(*) FILTER (WHERE ts < received_at - interval '50 minutes') AS late
FROM iot_readings WHERE device_id = ANY(:devices)
""")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory.mktemp("mqtt"))


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path, broker: Broker) -> Iterator[IotStack]:
    """The pipeline, each device allowed 3 batches a second; the API provisions the devices it
    creates on the broker."""
    yield from run_iot_stack(
        settings, logs_dir, name="iotsim", beat=False, rate_limit=3, rate_window=1,
        mqtt_url=broker.url, mqtt_admin_username=ADMIN_USER,
        mqtt_admin_password=admin_password(broker.data_dir),
    )  # fmt: skip


@pytest.fixture
def admin(stack: IotStack) -> Iterator[str]:
    """A key with both IoT scopes; every table is emptied after the test."""
    yield stack.key("iot:admin", "iot:read")
    clean_tables(stack.settings)


def simulate(stack: IotStack, admin: str, *args: str) -> dict[str, Any]:
    """Run the command to its end; its `--json` tally."""
    argv = switchyard("iot", "simulate", "--api", stack.base, "--key", admin, "--json", *args)
    done = subprocess.run(
        argv, env=settings_env(stack.settings), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    tally: dict[str, Any] = json.loads(done.stdout)
    return tally


def stored_totals(stack: IotStack, tally: dict[str, Any]) -> dict[str, int]:
    """The store's view of the tally's batches, once a worker stored every one."""

    def read() -> dict[str, int] | None:
        with transaction(stack.settings) as session:
            totals = dict(session.execute(TOTALS, {"ids": tally["batch_ids"]}).one()._mapping)
            totals.update(session.execute(ROWS, {"devices": tally["devices"]}).one()._mapping)
        return totals if totals["stored_batches"] == len(tally["batch_ids"]) else None

    return wait_until(read, timeout=90, what="every simulated batch to be stored")


def test_what_the_simulator_sent_is_what_the_store_holds(stack: IotStack, admin: str) -> None:
    tally = simulate(
        stack, admin, "--devices", "3", "--rate", "30", "--seconds", "4", "--prefix", "exact", *MIX
    )
    assert tally["batches"] == len(tally["batch_ids"]) >= 10
    assert tally["conflicts"] > 0 and tally["duplicates"] > 0 and tally["future"] > 0
    assert (
        tally["unique"] + tally["duplicates"] + tally["conflicts"] + tally["future"]
        == (tally["readings"])
    )
    totals = stored_totals(stack, tally)
    assert totals["rows"] == tally["unique"]
    assert totals["late"] == tally["late"] > 0
    assert totals["duplicates"] == tally["duplicates"]
    assert totals["conflicts"] == tally["conflicts"]
    assert totals["refused"] == tally["future"]  # every refusal is a future reading's
    # The same fleet again: devices taken over with new tokens, every new key stored once more.
    again = simulate(
        stack, admin, "--devices", "3", "--rate", "30", "--seconds", "2", "--prefix", "exact",
        "--seed", "2", *MIX,
    )  # fmt: skip
    assert stored_totals(stack, again)["rows"] == tally["unique"] + again["unique"]


def test_without_a_terminal_the_tally_is_printed_as_lines_while_it_runs(
    stack: IotStack, admin: str
) -> None:
    argv = switchyard("iot", "simulate", "--api", stack.base, "--key", admin, "--devices", "1",
                      "--rate", "10", "--seconds", "8", "--prefix", "plain")  # fmt: skip
    done = subprocess.run(
        argv, env=settings_env(stack.settings), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("5s: ")]
    assert "batches" in line and "new" in line and "x 429" in line
    assert "unique" in done.stdout and "transport" in done.stdout  # the final table


def test_429s_are_waited_out_and_counted_never_dropped(stack: IotStack, admin: str) -> None:
    # One device at 10 batches a second against a limit of 3: most first attempts get 429.
    tally = simulate(
        stack, admin, "--devices", "1", "--rate", "100", "--seconds", "2", "--prefix", "busy"
    )
    assert tally["throttled"] > 0
    assert tally["batches"] == 20 == len(tally["batch_ids"])
    assert stored_totals(stack, tally)["rows"] == tally["unique"]


class Reader:
    """A subscriber to every device's telemetry, as the bridge would be."""

    def __init__(self, port: int, password: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="sim-reader", protocol=mqtt.MQTTv5
        )
        self.paho.username_pw_set(BRIDGE_USER, password)
        self.paho.on_connect = lambda c, *_: c.subscribe(ALL_TELEMETRY, qos=1)
        self.paho.on_subscribe = lambda *_: self.subscribed.set()
        self.paho.on_message = lambda _, __, message: self.messages.append(message)
        self.paho.connect("127.0.0.1", port)
        self.paho.loop_start()
        wait_until(self.subscribed.is_set, what="the reader's SUBACK")

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def test_over_mqtt_each_device_publishes_its_batches_to_its_own_topic(
    stack: IotStack, admin: str, broker: Broker
) -> None:
    reader = Reader(broker.port, BRIDGE_PASSWORD)
    try:
        tally = simulate(
            stack, admin, "--mqtt", "--mqtt-url", broker.url,
            "--devices", "3", "--rate", "60", "--seconds", "3", "--prefix", "mq", *MIX,
        )  # fmt: skip
        wait_until(lambda: len(reader.messages) >= tally["batches"], what="every PUBACKed batch")
    finally:
        reader.close()
    assert len(reader.messages) == tally["batches"] > 0
    offers: dict[tuple[str, str, str], list[float]] = {}
    for message in reader.messages:
        device = message.topic.split("/")[1]
        assert message.topic == telemetry_topic(device) and device in tally["devices"]
        assert message.properties.ContentType == "application/json"  # type: ignore[union-attr]
        for r in json.loads(message.payload)["readings"]:
            offers.setdefault((device, r["metric"], r["ts"]), []).append(r["value"])
    resent = [values for values in offers.values() if len(values) == 2]
    assert all(len(values) <= 2 for values in offers.values())
    assert len(offers) == tally["unique"] + tally["future"]
    assert sum(a != b for a, b in resent) == tally["conflicts"] > 0
    assert sum(a == b for a, b in resent) == tally["duplicates"]
