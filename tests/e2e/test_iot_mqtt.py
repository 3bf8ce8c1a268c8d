"""MQTT ingestion end to end: a Mosquitto of this module's own with per-device credentials, the
real bridge, API, relay and worker. A device's readings are stored exactly once; it cannot
publish for another device; a bad message is recorded refused and does not stop the stream;
a message is acknowledged only after its batch commits, so a bridge killed while PostgreSQL
holds its transaction loses nothing; database and broker outages are survived."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import Process, wait_until
from store.db import transaction
from tasks.iot.mqtt_intake import telemetry_topic
from tests.support.api import count_rows
from tests.support.iot import provision
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.mqtt import Broker, Client, bridge_settings, running_broker, start_bridge

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
BRIDGE_APP = "switchyard-mqtt-bridge"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory.mktemp("mqtt"))


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path, broker: Broker) -> Iterator[IotStack]:
    yield from run_iot_stack(settings, logs_dir, name="iot-mqtt", beat=False,
                             **bridge_settings(broker))  # fmt: skip


@pytest.fixture
def bridge(stack: IotStack, logs_dir: Path) -> Iterator[Process]:
    proc = start_bridge(stack.settings, logs_dir)
    yield proc
    proc.stop()
    clean_tables(stack.settings)


def device(stack: IotStack, broker: Broker, name: str) -> Client:
    """Register `name` over HTTP and on the broker; a client connected as it."""
    provision(stack.base, stack.key("iot:admin"), device=name)
    with broker.admin() as admin:
        admin.add_device(name, f"pw-{name}")
    client = Client(broker, name, f"pw-{name}")
    assert client.connected
    return client


def body(*values: float, start: int = 0) -> bytes:
    """A JSON batch of temperatures, one a second from T0 + `start` seconds."""
    readings = [
        {"metric": "temp", "value": v, "unit": "Cel",
         "ts": (T0 + timedelta(seconds=start + n)).isoformat()}
        for n, v in enumerate(values)
    ]  # fmt: skip
    return json.dumps({"readings": readings}).encode()


def rows(settings: Settings, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with transaction(settings) as session:
        return [tuple(r) for r in session.execute(text(sql), params)]


def stored(settings: Settings, device_id: str, count: int) -> None:
    """Wait until `count` readings of the device are stored."""

    def enough() -> bool:
        found = rows(
            settings, "SELECT count(*) FROM iot_readings WHERE device_id = :d", d=device_id
        )
        return int(found[0][0]) >= count

    wait_until(enough, timeout=60, what=f"{count} readings of {device_id}")


def test_a_devices_readings_are_stored_exactly_once(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    client = device(stack, broker, "mq-1")
    topic = telemetry_topic("mq-1")
    assert not client.publish(topic, body(20.0, 21.0, 22.0)).is_failure
    line = f"temp,unit=Cel value=23 {int((T0 + timedelta(seconds=3)).timestamp())}"
    plain = "text/plain; precision=s"  # MQTT has no query string: the media type says it
    assert not client.publish(topic, line.encode(), content_type=plain).is_failure
    assert not client.publish(topic, body(20.0, 21.0, 22.0)).is_failure  # a resend
    stored(stack.settings, "mq-1", 4)
    wait_until(
        lambda: (
            rows(stack.settings, "SELECT count(*) FROM iot_batches WHERE status = 'stored'")
            == [(3,)]
        ),
        what="three stored batches",
    )
    client.close()
    assert count_rows(stack.settings, "iot_readings") == 4
    batches = rows(stack.settings, "SELECT content_type, stored, duplicates FROM iot_batches "
                   "ORDER BY received_at")  # fmt: skip
    assert batches == [("application/json", 3, 0), ("text/plain; precision=s", 1, 0),
                       ("application/json", 0, 3)]  # fmt: skip
    values = rows(stack.settings, "SELECT value_num, ts FROM iot_readings ORDER BY ts")
    assert [v for v, _ in values] == [20.0, 21.0, 22.0, 23.0]
    assert values[-1][1] == T0 + timedelta(seconds=3)


def test_a_retained_message_is_stored_once_not_at_every_resubscription(
    stack: IotStack, broker: Broker, bridge: Process, logs_dir: Path
) -> None:
    client = device(stack, broker, "mq-retain")
    topic = telemetry_topic("mq-retain")
    untimed = json.dumps({"readings": [{"metric": "temp", "value": 30.0}]}).encode()  # no ts
    assert not client.publish(topic, untimed, retain=True).is_failure
    stored(stack.settings, "mq-retain", 1)
    bridge.kill()  # the next bridge subscribes again: the broker still holds the message
    again = start_bridge(stack.settings, logs_dir, name="bridge-retain")
    try:
        assert not client.publish(topic, body(31.0)).is_failure
        sql = "SELECT count(*) FROM iot_readings WHERE value_num = 31"
        wait_until(lambda: rows(stack.settings, sql) == [(1,)], what="the next message stored")
        assert rows(stack.settings, "SELECT count(*) FROM iot_batches") == [(2,)]
    finally:
        again.stop()
        client.close()
    assert count_rows(stack.settings, "iot_readings") == 2


def test_a_device_cannot_publish_for_another_device(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    victim, forger = device(stack, broker, "mq-victim"), device(stack, broker, "mq-forger")
    assert client_refused(forger, telemetry_topic("mq-victim"), body(99.0))
    assert not forger.publish(telemetry_topic("mq-forger"), body(1.0)).is_failure
    stored(stack.settings, "mq-forger", 1)
    assert rows(stack.settings, "SELECT device_id, count(*) FROM iot_batches GROUP BY 1") == [
        ("mq-forger", 1)
    ]
    victim.close()
    forger.close()


def client_refused(client: Client, topic: str, payload: bytes) -> bool:
    return client.publish(topic, payload).getName() == "Not authorized"


def test_a_bad_message_is_recorded_refused_and_the_stream_goes_on(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    client = device(stack, broker, "mq-bad")
    topic = telemetry_topic("mq-bad")
    client.publish(topic, b"<reading/>", content_type="application/xml")
    client.publish(topic, b"{not json")
    client.publish(topic, b"m value=1", content_type="text/plain; charset=latin-1")
    client.publish(topic, body(5.0))
    stored(stack.settings, "mq-bad", 1)
    wait_until(
        lambda: (
            rows(stack.settings, "SELECT count(*) FROM iot_batches WHERE status = 'refused'")
            == [(3,)]
        ),
        what="three refused batches",
    )
    refusals = rows(stack.settings, "SELECT content_type, refusals->0->>'code', "
                    "refusals->0->>'field' FROM iot_batches WHERE status = 'refused' "
                    "ORDER BY received_at")  # fmt: skip
    assert refusals[0] == ("application/xml", "unsupported_media_type", "Content-Type")
    assert refusals[1][0] == "application/json" and refusals[1][1] is not None
    assert refusals[2] == ("text/plain; charset=latin-1", "unsupported_media_type", "Content-Type")
    counted = rows(stack.settings, "SELECT sum(refused), sum(accepted) FROM iot_ingest_counts")
    assert counted == [(3, 1)]  # the bridge's refusal is counted as the worker's is
    assert bridge.popen.poll() is None
    client.close()


def test_a_message_from_a_device_the_registry_does_not_know_is_dropped(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    with broker.admin() as admin:  # on the broker only: never registered, or deleted since
        admin.add_device("mq-ghost", "pw-mq-ghost")
    ghost = Client(broker, "mq-ghost", "pw-mq-ghost")
    ghost.publish(telemetry_topic("mq-ghost"), body(1.0))
    client = device(stack, broker, "mq-known")
    client.publish(telemetry_topic("mq-known"), body(2.0))
    stored(stack.settings, "mq-known", 1)
    assert rows(stack.settings, "SELECT device_id FROM iot_batches") == [("mq-known",)]
    assert "mqtt_message_dropped" in bridge.output() and bridge.popen.poll() is None
    ghost.close()
    client.close()


@pytest.fixture
def locked(stack: IotStack) -> Iterator[psycopg.Connection]:
    """A transaction holding iot_batches so that no batch can be inserted until it ends."""
    url = stack.settings.database.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE iot_batches IN EXCLUSIVE MODE")
        yield conn
        conn.rollback()


def _bridge_waits_on_a_lock(conn: psycopg.Connection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND wait_event_type = 'Lock' AND datname = current_database()",
        (BRIDGE_APP,),
    ).fetchone()
    return bool(found and found[0])


def test_a_message_is_acknowledged_only_after_its_batch_commits(
    stack: IotStack, broker: Broker, bridge: Process, locked: psycopg.Connection, logs_dir: Path
) -> None:
    client = device(stack, broker, "mq-held")
    client.publish(telemetry_topic("mq-held"), body(7.0, 8.0))
    wait_until(lambda: _bridge_waits_on_a_lock(locked), what="the bridge to wait on the lock")
    bridge.kill()  # had it acknowledged before the commit, the message would be lost now
    bridge.popen.wait(10)
    locked.rollback()
    again = start_bridge(stack.settings, logs_dir, name="bridge-again")
    try:
        stored(stack.settings, "mq-held", 2)
    finally:
        again.stop()
    assert rows(stack.settings, "SELECT count(*) FROM iot_batches") == [(1,)]
    client.close()


def test_qos0_messages_past_a_full_inbox_are_dropped_counted_not_held_in_memory(
    stack: IotStack, broker: Broker, bridge: Process, locked: psycopg.Connection
) -> None:
    client = device(stack, broker, "mq-qos0")
    client.publish(telemetry_topic("mq-qos0"), body(1.0))  # QoS 1: the first group, held
    wait_until(lambda: _bridge_waits_on_a_lock(locked), what="the bridge to wait on the lock")
    limit = 200  # IotSettings.mqtt_receive_maximum's default: the inbox's bound for QoS 0
    for n in range(limit + 150):
        client.paho.publish(telemetry_topic("mq-qos0"), body(20.0, start=1 + n), qos=0)
    time.sleep(2)  # for the broker to deliver them (on loopback, milliseconds)
    locked.rollback()
    stored(stack.settings, "mq-qos0", 1 + limit)
    wait_until(lambda: "mqtt_qos0_dropped" in bridge.output(), timeout=30,
               what="the bridge to log its QoS 0 drops")  # fmt: skip
    client.close()
    [(batches,)] = rows(stack.settings, "SELECT count(*) FROM iot_batches")
    assert 1 + limit <= batches < 1 + limit + 150  # the inbox's worth kept, the rest dropped


def test_the_bridge_survives_its_database_connection_dying_mid_commit(
    stack: IotStack, broker: Broker, bridge: Process, locked: psycopg.Connection
) -> None:
    client = device(stack, broker, "mq-outage")
    client.publish(telemetry_topic("mq-outage"), body(1.5, 2.5, 3.5))
    wait_until(lambda: _bridge_waits_on_a_lock(locked), what="the bridge to wait on the lock")
    locked.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
        "AND datname = current_database()",
        (BRIDGE_APP,),
    )
    locked.rollback()
    stored(stack.settings, "mq-outage", 3)
    assert bridge.popen.poll() is None
    assert "mqtt_bridge_database_unavailable" in bridge.output()
    client.close()


def test_the_bridge_survives_a_broker_restart(
    stack: IotStack, broker: Broker, bridge: Process
) -> None:
    client = device(stack, broker, "mq-restart")
    client.close()
    broker.stop()
    broker.start()
    wait_until(lambda: bridge.output().count("mqtt_connected") >= 2, what="the bridge to reconnect")
    client = Client(broker, "mq-restart", "pw-mq-restart")
    client.publish(telemetry_topic("mq-restart"), body(4.0))
    stored(stack.settings, "mq-restart", 1)
    assert bridge.popen.poll() is None
    client.close()
