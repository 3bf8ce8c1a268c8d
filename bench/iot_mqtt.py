"""B-iot-mqtt: readings committed per second through the broker with PUBACK after commit (the
MQTT bridge: one durable batch + `iot.ingest` job per message) against a bare paho subscriber
that only counts the same QoS 1 messages.

A Mosquitto of the run's own; two persistent sessions subscribed to every device's telemetry,
the bridge's (`switchyard-bridge`) and the bare one's, both offline while a round's messages
(`--messages` JSON batches of `--size` readings, from `--devices` devices) are published and
queued for both. Then each drains the same queue, in alternating order: the bare subscriber
(auto-acknowledging, same receive maximum) timed from CONNACK to its last message, the bridge
(in this process, a thread) timed from its start until a poll (every 20 ms) sees every
message's batch committed. Each round checks the bridge committed exactly one batch per
message. Storing the readings is the workers' (B-iot-ingest measures that).

    python -m bench.iot_mqtt [--devices 100] [--messages 200] [--size 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import text

from bench.common import BenchEnv, Series, bench_env, machine, progress, wait_until
from config import Settings
from devstack.mqtt_broker import listening, local_admin, mosquitto_argv, provision_dev_broker
from devstack.processes import Process
from devstack.redis_server import free_loopback_port
from ops.fleet import PROFILE_ID, profile_body
from store.db import transaction
from tasks.iot import devices
from tasks.iot.mqtt_bridge import Bridge
from tasks.iot.mqtt_intake import ALL_TELEMETRY, telemetry_topic
from tasks.iot.settings import IotSettings

TARGET = 0.5
BARE = "bench-bare"


def _client(client_id: str, user: str, password: str, *, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(100)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3_600
    props.ReceiveMaximum = IotSettings().mqtt_receive_maximum
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    return client


def subscribe_once(client_id: str, password: str, *, port: int) -> None:
    """Make the session `client_id` subscribe, so the broker queues telemetry for it."""
    subscribed = threading.Event()
    client = _client(client_id, IotSettings().mqtt_username, password, port=port)
    client.on_subscribe = lambda *_: subscribed.set()
    client.loop_start()
    client.subscribe(ALL_TELEMETRY, qos=1)
    if not subscribed.wait(20):
        raise RuntimeError(f"{client_id} could not subscribe")
    client.disconnect()
    client.loop_stop()


def run_bare(port: int, password: str, expected: int) -> float:
    """Messages per second a bare subscriber drains from its queued session."""
    got, done, began = [0], threading.Event(), [0.0]
    client = _client(BARE, IotSettings().mqtt_username, password, port=port)
    client.on_connect = lambda *_: began.__setitem__(0, time.perf_counter())

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] == expected:
            done.set()

    client.on_message = on_message
    client.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"the bare subscriber got {got[0]} of {expected}")
    rate = expected / (time.perf_counter() - began[0])
    client.disconnect()
    client.loop_stop()
    return rate


def _batches(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.scalar(text("SELECT count(*) FROM iot_batches")) or 0)


def run_bridge(settings: Settings, expected: int) -> float:
    """Messages per second the bridge commits (and then acknowledges) from its session."""
    before, stop = _batches(settings), threading.Event()
    bridge = Bridge(settings, stop=stop)
    began = time.perf_counter()
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    wait_until(lambda: _batches(settings) - before >= expected, timeout=300, interval=0.02,
               what="the bridge to commit the round")  # fmt: skip
    rate = expected / (time.perf_counter() - began)
    stop.set()
    thread.join(30)
    if (made := _batches(settings) - before) != expected:
        raise RuntimeError(f"the bridge made {made} batches of {expected} messages")
    return rate


def publish(port: int, ids: list[str], *, messages: int, size: int, start: int) -> None:
    """Publish `messages` batches round-robin over the devices; wait for every PUBACK."""
    t0 = datetime.now(UTC) - timedelta(hours=1)
    clients = {d: _client(f"pub-{d}", d, f"pw-{d}", port=port) for d in ids}
    for client in clients.values():
        client.loop_start()
    infos = []
    for n in range(start, start + messages):
        readings = [{"metric": "temp", "value": 20.0,
                     "ts": (t0 + timedelta(microseconds=n * size + i)).isoformat()}
                    for i in range(size)]  # fmt: skip
        device = ids[n % len(ids)]
        body = json.dumps({"readings": readings})
        infos.append(clients[device].publish(telemetry_topic(device), body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    for client in clients.values():
        client.disconnect()
        client.loop_stop()


def _setup(env: BenchEnv, data: Path, ids: list[str]) -> tuple[Process, int, Settings, str]:
    port = free_loopback_port()
    broker = env.start(*mosquitto_argv(data, port=port), name="mosquitto")
    wait_until(lambda: listening(port), timeout=20, what="mosquitto")
    bridge_env = provision_dev_broker(data, url=f"mqtt://127.0.0.1:{port}")
    password = bridge_env["SWITCHYARD_IOT__MQTT_PASSWORD"]
    with local_admin(data, port=port) as admin:
        for d in ids:
            admin.add_device(d, f"pw-{d}")
    with transaction(env.settings) as session:
        devices.create_profile(session, profile_id=PROFILE_ID,
                               metrics=profile_body()["metrics"], future_policy="refuse",
                               late_window=None, future_skew=None)  # fmt: skip
        for d in ids:
            devices.create_device(session, device_id=d, profile_id=PROFILE_ID)
    own = IotSettings(mqtt_url=f"mqtt://127.0.0.1:{port}", mqtt_password=password)
    return broker, port, env.settings.model_copy(update={"iot": own}), password


def measure(args: argparse.Namespace) -> tuple[Series, Series]:
    """Run the interleaved rounds; returns (ours, bare) in readings/s."""
    ours, bare = Series("switchyard bridge, PUBACK after commit"), Series("bare paho subscriber")
    ids = [f"bench-{n:04d}" for n in range(args.devices)]
    with bench_env("iotmqtt") as env:
        broker, port, settings, password = _setup(env, env.logs / "mqtt", ids)
        try:
            for client_id in (BARE, settings.section(IotSettings).mqtt_client_id):
                subscribe_once(client_id, password, port=port)
            sent = 0
            for n in range(1, args.rounds + 1):
                progress(f"round {n}: publishing {args.messages} messages")
                publish(port, ids, messages=args.messages, size=args.size, start=sent)
                sent += args.messages
                order: list[tuple[Series, Callable[[], float]]] = [
                    (bare, lambda: run_bare(port, password, args.messages)),
                    (ours, lambda: run_bridge(settings, args.messages)),
                ]
                for series, run in order if n % 2 else order[::-1]:
                    series.values.append(run() * args.size)
                progress(f"round {n}: ours {ours.values[-1]:.0f}/s, bare {bare.values[-1]:.0f}/s")
        finally:
            broker.stop()
    return ours, bare


def main(argv: list[str] | None = None) -> int:
    """Run B-iot-mqtt and print both medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_mqtt", description=__doc__)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200, help="messages per round")
    parser.add_argument("--size", type=int, default=1_000, help="readings per message")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ours, bare = measure(args)
    print(f"B-iot-mqtt: {args.rounds} rounds x {args.messages} messages of {args.size} readings, "
          f"{args.devices} devices ({machine()})")  # fmt: skip
    print(bare.row())
    print(ours.row(bare))
    ratio = ours.median / bare.median if bare.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  B-iot-mqtt ratio {ratio:.2f}x — {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
